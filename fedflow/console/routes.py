"""What each console URL does: read the engine, render a page, or apply an action.

| path | |
|---|---|
| ``GET /`` | the flow list (``?status=&flow=&id=&page=``) |
| ``GET /flows/ID`` | one flow |
| ``POST /flows/ID/resume``, ``/cancel``, ``/wake`` | ask to confirm, then (with ``confirm=yes``) apply |
| ``GET /peers``, ``/timers`` | peers and replica slots; schedules and timers |
| ``GET /metrics``, ``/healthz`` | Prometheus text; ``ok`` |
| ``GET/POST /login``, ``POST /logout`` | the token form |

Actions are applied only to the flow as the person saw it: a resume names
the tag the page showed and is refused when the flow no longer waits on it.
"""

from __future__ import annotations

import json
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

from .. import values
from ..errors import FedflowError, FlowFailed, UnsupportedValue
from ..store.base import RUNNING, STATUSES, SUSPENDED, FlowRecord
from . import auth, pages
from .app import Request, Response, is_loopback
from .hooks import Instrumented
from .metrics import CONTENT_TYPE, Metrics
from .timeline import timeline

#: Seconds one peer's health check may take on the peers page.
HEALTH_DEADLINE = 1.0
#: What a redirect after an action says (a fixed text per key: nothing from the URL is echoed).
DONE_MESSAGES = {"resumed": "Resumed. This is the flow now.", "cancelled": "Cancelled.",
                 "woken": "Its timer fired. This is the flow now.",
                 "failed": "Resumed; the flow failed (see its error below)."}
_TEXT = "text/plain; charset=utf-8"


class Routes:
    """The console of one engine."""

    def __init__(self, engine: Any, gate: auth.Gate, metrics: Metrics, watched: Instrumented, *,
                 loopback: bool) -> None:
        self.engine = engine
        self.gate = gate
        self.metrics = metrics
        self.watched = watched
        self.loopback = loopback
        self._slots: dict[tuple[str, int], int] = {}  # (source, text length) -> flows in that replica
        self._slots_lock = threading.Lock()

    # ------------------------------------------------------------ dispatch
    def handle(self, req: Request) -> Response:
        """The response to `req`."""
        if self.loopback and not _loopback_host(req.headers.get("Host")):
            return Response(421, "this console answers only to its loopback address", _TEXT)
        seg = req.segments
        known = req.cookies.get(auth.CSRF_COOKIE)
        req.csrf, req.csrf_is_new = (known, False) if known else (auth.new_csrf(), True)
        if req.raw_path == "/healthz":
            return Response(200, "ok\n", _TEXT)
        if seg == ["login"]:
            return self.login(req)
        if not self.gate.allowed(req.headers.get("Authorization"), req.cookies):
            return self._unauthorised(req)
        if req.method == "POST":
            if not self._csrf_ok(req):
                return Response(403, "this form is stale or came from another site (CSRF check failed); reload the "
                                "page and try again", _TEXT)
            return self._post(req, seg)
        if req.method != "GET":
            return Response(405, "GET or POST only", _TEXT, [("Allow", "GET, POST")])
        if req.raw_path == "/":
            return self.flows(req)
        if len(seg) == 2 and seg[0] == "flows" and seg[1]:
            return self.flow(req, seg[1])
        if seg == ["peers"]:
            return self.peers(req)
        if seg == ["timers"]:
            return self.timers(req)
        if seg == ["metrics"]:
            return Response(200, self.metrics.exposition(), CONTENT_TYPE)
        return self._page(req, 404, "Not found", pages.message_page("Not found", f"nothing at {req.raw_path}"))

    def _post(self, req: Request, seg: list[str]) -> Response:
        if seg == ["logout"]:
            return Response.redirect("/login", [("Set-Cookie", auth.set_cookie(auth.SESSION_COOKIE, "", max_age=0))])
        if len(seg) == 3 and seg[0] == "flows" and seg[2] in ("resume", "cancel", "wake"):
            return {"resume": self.resume, "cancel": self.cancel, "wake": self.wake}[seg[2]](req, seg[1])
        return Response(404, "no such action", _TEXT)

    def _csrf_ok(self, req: Request) -> bool:
        if self.gate.bearer_ok(req.headers.get("Authorization")):
            return True  # a browser never sends this header by itself
        return auth.csrf_ok(req.cookies.get(auth.CSRF_COOKIE), req.form.get(auth.CSRF_FIELD))

    def _unauthorised(self, req: Request) -> Response:
        if req.method == "GET" and req.segments[0] != "metrics":
            return Response.redirect("/login?" + _next_query(req.target))
        return Response(401, "this console needs its token: Authorization: Bearer <token>", _TEXT,
                        [("WWW-Authenticate", 'Bearer realm="fedflow"')])

    # ------------------------------------------------------------ rendering
    def _page(self, req: Request, status: int, title: str, body: str, active: str = "") -> Response:
        nonce = secrets.token_urlsafe(12)
        signed_in = self.gate.required and auth.SESSION_COOKIE in req.cookies
        text = pages.layout(title, body, instance=self.engine.name, active=active, nonce=nonce, csrf=req.csrf,
                            signed_in=signed_in)
        headers = [("Content-Security-Policy", f"default-src 'none'; style-src 'unsafe-inline'; "
                                               f"script-src 'nonce-{nonce}'; form-action 'self'; "
                                               f"frame-ancestors 'none'; base-uri 'none'")]
        if req.csrf_is_new:
            headers.append(("Set-Cookie", auth.set_cookie(auth.CSRF_COOKIE, req.csrf)))
        return Response(status, text, headers=headers)

    # ------------------------------------------------------------ pages
    def flows(self, req: Request) -> Response:
        """The flow list."""
        status = req.query.get("status") or None
        filters = pages.Filters(status if status in STATUSES else None, req.query.get("flow") or None,
                                req.query.get("id") or None)
        after = req.query.get("page") or None
        try:
            page = self.engine.list_page(status=filters.status, flow=filters.flow, id_prefix=filters.id_prefix,
                                         page_token=after)
        except FedflowError as exc:
            return self._page(req, 400, "Flows", pages.message_page("Cannot list these flows", str(exc)), "flows")
        body = pages.flows_page(self.engine.count_by_status(), page, filters, after=after)
        return self._page(req, 200, "Flows", body, "flows")

    def _record(self, flow_id: str) -> FlowRecord | None:
        rec = self.engine.store.get(flow_id)
        if rec is not None and rec.status != RUNNING and self.engine.status(flow_id) == RUNNING:
            rec.status = RUNNING  # being resumed in this process right now
        return rec

    def flow(self, req: Request, flow_id: str, *, error: str = "", value: str = "", status: int = 200) -> Response:
        """One flow's page."""
        rec = self._record(flow_id)
        if rec is None:
            return self._page(req, 404, "No such flow", pages.message_page(
                "No such flow", f"no flow {flow_id!r} on this instance; it may have been forgotten"))
        try:
            events = timeline(self.engine.store.load_log(flow_id), flow_id, self.watched.step_seconds(flow_id))
        except FedflowError as exc:  # a corrupt entry: say so on the page, keep the rest of it
            events, error = [], error or f"Cannot show the journal: {exc}"
        message = DONE_MESSAGES.get(req.query.get("did", ""), "")
        body = pages.flow_page(rec, events, csrf=req.csrf, message=message, error=error, value=value)
        return self._page(req, status, f"Flow {flow_id}", body, "flows")

    def peers(self, req: Request) -> Response:
        """Peers with health and last contact; the replica slots held here."""
        names = self.engine.peers.names()
        with ThreadPoolExecutor(max_workers=max(1, min(len(names), 16)), thread_name_prefix="fedflow-console") as pool:
            serving = list(pool.map(self._probe, names))
        rows = [pages.PeerRow(name, self.engine.peers.address(name), up, self.watched.last_contact(name))
                for name, up in zip(names, serving, strict=True)]
        return self._page(req, 200, "Peers", pages.peers_page(rows, self._replica_slots()), "peers")

    def _probe(self, name: str) -> bool | None:
        try:
            up = bool(self.engine.peers.get(name).health(deadline=HEALTH_DEADLINE))
        except FedflowError:
            return False
        if up:
            self.watched.contacted(name, "health check")
        return up

    def _replica_slots(self) -> list[pages.SlotRow]:
        slots = []
        for source in self.engine.store.replica_sources():
            text = self.engine.store.get_replica(source) or ""
            stored = self.watched.replica_stored(source)
            slots.append(pages.SlotRow(source, self._flows_in(source, text), len(text.encode("utf-8")),
                                       stored[0] if stored else None))
        return slots

    def _flows_in(self, source: str, text: str) -> int | None:
        key = (source, len(text))
        with self._slots_lock:
            if key in self._slots:
                return self._slots[key]
        try:
            flows = json.loads(text).get("flows")
        except (ValueError, AttributeError):
            return None
        count = len(flows) if isinstance(flows, list) else None
        if count is not None:
            with self._slots_lock:
                self._slots[key] = count
        return count

    def timers(self, req: Request) -> Response:
        """The engine's schedules and the timers waiting to fire."""
        body = pages.timers_page(self.engine.timers(), self.engine.schedules(), self.engine.clock.time())
        return self._page(req, 200, "Timers", body, "timers")

    # ------------------------------------------------------------ actions
    def resume(self, req: Request, flow_id: str) -> Response:
        """Check the value, ask to confirm, then resume the flow at the tag the page showed."""
        rec = self._record(flow_id)
        if rec is None:
            return self.flow(req, flow_id)
        text, tag = req.form.get("value", ""), req.form.get("tag", "")
        try:
            if not text.strip():
                raise UnsupportedValue("the value is empty")
            value = values.loads(text)
        except UnsupportedValue as exc:
            return self.flow(req, flow_id, status=400, value=text,
                             error=f"Not resumed: the value is not valid JSON ({exc}). Write JSON such as true, "
                                   f"\"approved\" or {{\"n\": 1}}.")
        if rec.status != SUSPENDED or rec.waiting != tag:
            now = f"waits on {rec.waiting!r}" if rec.status == SUSPENDED else f"is {rec.status}"
            return self.flow(req, flow_id, status=409, value=text,
                             error=f"Not resumed: the flow now {now}, not waiting on {tag!r}; nothing was changed.")
        if req.form.get("confirm") != "yes":
            body = pages.confirm_page(rec, "resume", {"value": text, "tag": tag}, csrf=req.csrf)
            return self._page(req, 200, "Confirm resume", body, "flows")
        try:
            self.engine.resume(flow_id, value, tag=tag)  # refused if it waits elsewhere by now
        except FlowFailed:
            return Response.redirect(pages.flow_url(flow_id) + "?did=failed")
        except FedflowError as exc:
            return self.flow(req, flow_id, status=409, value=text, error=f"Not resumed: {exc}")
        return Response.redirect(pages.flow_url(flow_id) + "?did=resumed")

    def cancel(self, req: Request, flow_id: str) -> Response:
        """Ask to confirm, then cancel the flow."""
        rec = self._record(flow_id)
        if rec is None:
            return self.flow(req, flow_id)
        if req.form.get("confirm") != "yes":
            return self._page(req, 200, "Confirm cancel", pages.confirm_page(rec, "cancel", {}, csrf=req.csrf),
                              "flows")
        try:
            self.engine.cancel(flow_id)
        except FedflowError as exc:
            return self.flow(req, flow_id, status=409, error=f"Not cancelled: {exc}")
        return Response.redirect(pages.flow_url(flow_id) + "?did=cancelled")

    def wake(self, req: Request, flow_id: str) -> Response:
        """Ask to confirm, then fire the flow's timer now (if it still waits on the tag the page showed)."""
        rec = self._record(flow_id)
        if rec is None:
            return self.flow(req, flow_id)
        tag = req.form.get("tag", "")
        if rec.status != SUSPENDED or rec.waiting != tag or rec.wake_at is None:
            now = f"waits on {rec.waiting!r}" if rec.status == SUSPENDED else f"is {rec.status}"
            return self.flow(req, flow_id, status=409,
                             error=f"Not woken: the flow now {now}, not on the timer of {tag!r}; nothing was changed.")
        if req.form.get("confirm") != "yes":
            body = pages.confirm_page(rec, "wake", {"tag": tag}, csrf=req.csrf)
            return self._page(req, 200, "Confirm wake", body, "flows")
        try:
            self.engine.wake(flow_id)
        except FlowFailed:
            return Response.redirect(pages.flow_url(flow_id) + "?did=failed")
        except FedflowError as exc:
            return self.flow(req, flow_id, status=409, error=f"Not woken: {exc}")
        return Response.redirect(pages.flow_url(flow_id) + "?did=woken")

    # ------------------------------------------------------------ login
    def login(self, req: Request) -> Response:
        """The token form, and signing in with it."""
        if not self.gate.required:
            return Response.redirect("/")
        next_path = _safe_next(req.form.get("next") if req.method == "POST" else req.query.get("next"))
        if req.method == "POST":
            if not auth.csrf_ok(req.cookies.get(auth.CSRF_COOKIE), req.form.get(auth.CSRF_FIELD)):
                return Response(403, "the sign-in form is stale (CSRF check failed); reload it", _TEXT)
            if self.gate.token_ok(req.form.get("token")):
                cookie = auth.set_cookie(auth.SESSION_COOKIE, self.gate.session_value())
                return Response.redirect(next_path, [("Set-Cookie", cookie)])
            return self._page(req, 401, "Sign in", pages.login_page(next_path, req.csrf, failed=True))
        return self._page(req, 200, "Sign in", pages.login_page(next_path, req.csrf, failed=False))


def _loopback_host(host: str | None) -> bool:
    """Whether a Host header names this machine (a console on loopback answers nothing else: DNS rebinding)."""
    if not host:
        return False
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return is_loopback(name)


def _safe_next(path: str | None) -> str:
    """A path on this console to go to after signing in ("/" for anything else)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


def _next_query(target: str) -> str:
    return urlencode({"next": _safe_next(target)})
