"""Who may use the console: the shared token (a login cookie or `Authorization: Bearer`) and CSRF.

With a token, every page but ``/healthz`` needs either the header
``Authorization: Bearer <token>`` (scripts, Prometheus) or the session
cookie the login form sets. The cookie holds an HMAC of the token, not the
token, and is ``HttpOnly; SameSite=Strict``: a changed token logs everyone out.

Every action is a POST carrying a CSRF token: the value of the
``fedflow_csrf`` cookie (random, ``HttpOnly; SameSite=Strict``, set with the
first page) repeated in a hidden form field, so another site cannot make a
browser post here. A POST with a good Bearer header needs no CSRF field: a
browser never adds that header on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from http.cookies import CookieError, SimpleCookie

SESSION_COOKIE = "fedflow_session"
CSRF_COOKIE = "fedflow_csrf"
CSRF_FIELD = "csrf"


def cookies(header: str | None) -> dict[str, str]:
    """The cookies of a `Cookie` header, by name (a malformed header counts as none)."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header or "")
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def set_cookie(name: str, value: str, *, secure: bool = False, max_age: int | None = None) -> str:
    """A `Set-Cookie` value: HttpOnly, SameSite=Strict, for the whole console."""
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def new_csrf() -> str:
    """A fresh CSRF token."""
    return secrets.token_urlsafe(24)


def csrf_ok(cookie_value: str | None, field_value: str | None) -> bool:
    """Whether a form's CSRF field repeats its CSRF cookie."""
    return bool(cookie_value) and bool(field_value) and hmac.compare_digest(str(cookie_value), str(field_value))


class Gate:
    """Checks requests against the console's token (None: the console is open to whoever reaches it)."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self._session = (hmac.new(token.encode("utf-8"), b"fedflow-console-session", hashlib.sha256).hexdigest()
                         if token else None)

    @property
    def required(self) -> bool:
        """Whether requests need the token."""
        return self.token is not None

    def session_value(self) -> str:
        """What the session cookie holds once the token was given."""
        if self._session is None:
            raise ValueError("a console without a token has no sessions")
        return self._session

    def bearer_ok(self, authorization: str | None) -> bool:
        """Whether an `Authorization` header carries the token as `Bearer <token>`."""
        if self.token is None or not authorization:
            return False
        scheme, _, value = authorization.strip().partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode("utf-8"),
                                                                  self.token.encode("utf-8"))

    def token_ok(self, given: str | None) -> bool:
        """Whether a token typed into the login form is the token."""
        return self.token is not None and given is not None and hmac.compare_digest(
            given.strip().encode("utf-8"), self.token.encode("utf-8"))

    def allowed(self, authorization: str | None, jar: dict[str, str]) -> bool:
        """Whether a request with this `Authorization` header and these cookies may see the console."""
        if self.token is None:
            return True
        if self.bearer_ok(authorization):
            return True
        session = jar.get(SESSION_COOKIE)
        return session is not None and hmac.compare_digest(session, self.session_value())
