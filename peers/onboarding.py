"""Signup -> confirm within a timeout -> a reminder after a sleep -> onboard; and a nightly report.

`signup` sends a confirmation mail (a journaled step: sent once, however
often the flow replays), then waits up to `CONFIRM_WITHIN` seconds for the
user to confirm (``suspend("confirm", timeout=...)``). Unconfirmed, the
signup expires with a `Fail`. Confirmed, it sleeps `REMIND_AFTER` seconds
(durably: the timer is a row in the store, not a thread), sends a reminder
to finish the profile, and onboards the user. `nightly-report` counts the
day's signups at 03:00 UTC, started by the `nightly` schedule::

    fedflow serve --name a --listen 127.0.0.1:50061 --load peers/onboarding.py
    fedflow start  --at 127.0.0.1:50061 signup '"ada@example.com"' --id signup-ada
    # {"id": "signup-ada", "status": "suspended", "tag": "confirm"}
    fedflow resume --at 127.0.0.1:50061 signup-ada true --tag confirm
    # {"id": "signup-ada", "status": "suspended", "tag": "sleep:2"}
    fedflow timers --at 127.0.0.1:50061           # the reminder's timer, in 3 days
    fedflow wake   --at 127.0.0.1:50061 signup-ada  # or wait for it
    # {"id": "signup-ada", "status": "done", "result": {"email": "ada@example.com", "onboarded": true, ...}}
    fedflow schedule list --at 127.0.0.1:50061      # nightly, next at 03:00 UTC
"""

from __future__ import annotations

from typing import Any

from fedflow import Engine, attempt, defflow, fail, is_failed, node, sleep, step, suspend

#: How long a signup waits for its confirmation, and when the reminder goes out after it.
CONFIRM_WITHIN = 24 * 3600
REMIND_AFTER = 3 * 24 * 3600

#: Mails "sent" by this process (a real module would call a mail service in these steps).
OUTBOX: list[tuple[str, str]] = []


def send_confirmation(email: str) -> dict[str, Any]:
    """Mail the confirmation link (journaled: never sent twice)."""
    OUTBOX.append((email, "confirm your address"))
    return {"email": email}


def wait_for_confirmation(signup: dict[str, Any]) -> Any:
    """The user's answer, or a Fail once CONFIRM_WITHIN passes without one."""
    confirmed = suspend("confirm", timeout=CONFIRM_WITHIN)
    if is_failed(confirmed):
        return fail(f"signup of {signup['email']} expired unconfirmed")
    return {**signup, "confirmed": bool(confirmed)}


def remind_later(signup: dict[str, Any]) -> dict[str, Any]:
    """Sleep REMIND_AFTER seconds, durably."""
    sleep(REMIND_AFTER)
    return signup


def send_reminder(signup: dict[str, Any]) -> dict[str, Any]:
    """Mail the reminder to finish the profile (journaled)."""
    OUTBOX.append((signup["email"], "finish your profile"))
    return {**signup, "reminded": True}


def onboard(signup: dict[str, Any]) -> dict[str, Any]:
    """The user is in."""
    return {**signup, "onboarded": True}


#: mail, wait for "confirm" (or expire), sleep, remind, onboard.
signup = attempt(step(send_confirmation), node(wait_for_confirmation), node(remind_later), step(send_reminder),
                 step(onboard))


def nightly_report(tick: dict[str, Any]) -> dict[str, Any]:
    """What a nightly tick does: here, say when it ran (`tick` is {"at": ISO time, "input": ...})."""
    return {"report_at": tick["at"], "input": tick["input"]}


def register(engine: Engine) -> None:
    """Define `signup` and `nightly-report`, and schedule the report for 03:00 UTC every night."""
    defflow("signup", signup)
    defflow("nightly-report", node(nightly_report))
    engine.schedule("nightly", "nightly-report", cron="0 3 * * *", catchup="latest")
