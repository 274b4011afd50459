"""The console's HTML, rendered on the server: plain forms and links, no files fetched from anywhere.

Every value from a flow, a peer or a request goes through `h` (HTML-escaped,
quotes included) or `q` (a URL path segment). Pages work without
JavaScript; the one inline script (allowed by its nonce) checks a resume
value is JSON before the form is sent, which the server checks again.
"""

from __future__ import annotations

import dataclasses
import html
import json
import time
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from ..store.base import LIVE, STATUSES, SUSPENDED, FlowPage, FlowRecord
from ..waits import SLEEP_PREFIX
from .auth import CSRF_FIELD
from .timeline import PREVIEW_CHARS, Event

STYLE = """
*{box-sizing:border-box}body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;gap:1rem;align-items:center}
header a{color:#cfe0ff;text-decoration:none}header a.on{color:#fff;font-weight:600}header b{margin-right:auto}
main{max-width:72rem;margin:0 auto;padding:1rem}h1{font-size:1.3rem;margin:.2rem 0 1rem}h2{font-size:1.05rem}
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.35rem .5rem;
border-bottom:1px solid #e3e6eb;vertical-align:top}th{font-weight:600;background:#eef0f4}.scroll{overflow-x:auto}
pre{background:#fff;border:1px solid #e3e6eb;padding:.5rem;overflow-x:auto;white-space:pre-wrap;word-break:break-word}
code,pre,.id{font-family:ui-monospace,monospace;font-size:.9em}.id{word-break:break-all}
.st{display:inline-block;padding:0 .45rem;border-radius:.6rem;font-size:.85em;background:#e3e6eb}
.st-done{background:#d4f5dd}.st-failed{background:#ffd9d6}.st-suspended{background:#fff1c2}
.st-running{background:#d6e8ff}.st-cancelled,.st-moved{background:#e6e0f5}
.counts{display:flex;flex-wrap:wrap;gap:.5rem;margin-bottom:1rem}.counts a{background:#fff;border:1px solid
#d5d9e0;border-radius:.4rem;padding:.3rem .6rem;text-decoration:none;color:inherit}.counts a.on{border-color:#1d2330}
form.filter{display:flex;flex-wrap:wrap;gap:.5rem;margin-bottom:1rem;align-items:end}label{display:block;font-size:.85em}
input,select,textarea,button{font:inherit;padding:.3rem .4rem}textarea{width:100%;min-height:5rem}
button{cursor:pointer;border:1px solid #1d2330;background:#1d2330;color:#fff;border-radius:.3rem}
button.danger{background:#a1261b;border-color:#a1261b}.box{background:#fff;border:1px solid #e3e6eb;
padding:.75rem;margin:1rem 0}.msg{background:#d4f5dd;padding:.5rem}.err{background:#ffd9d6;padding:.5rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}
ol.tl{list-style:none;padding:0}ol.tl li{border-left:3px solid #c5ccd6;padding:.2rem .6rem .5rem;margin-left:.3rem}
ol.tl li.k-remote,ol.tl li.k-failover{border-color:#5b8def}ol.tl li.k-resume,ol.tl li.k-request{border-color:#e0b400}
ol.tl li.bad{border-color:#d33}.muted{color:#677}.pager{margin-top:1rem;display:flex;gap:1rem}
"""


def h(value: Any) -> str:
    """`value` as text safe inside HTML (and inside quoted attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def q(segment: str) -> str:
    """`segment` as one URL path segment (slashes included)."""
    return quote(segment, safe="")


def flow_url(flow_id: str, action: str = "") -> str:
    """The console path of a flow's page, or of one of its actions."""
    return f"/flows/{q(flow_id)}" + (f"/{action}" if action else "")


def when(stamp: float | None) -> str:
    """A unix time as UTC text ("-" when unknown)."""
    if not stamp:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp)) + " UTC"


def relative(stamp: float, now: float) -> str:
    """How far `stamp` is from `now`, in words ("in 5 m", "12 s ago")."""
    gap = abs(stamp - now)
    size = next(((gap / unit, name) for unit, name in ((86400, "d"), (3600, "h"), (60, "m")) if gap >= unit),
                (gap, "s"))
    text = f"{size[0]:.0f} {size[1]}"
    return f"in {text}" if stamp >= now else f"{text} ago"


def waiting_text(tag: str | None, wake_at: float | None) -> str:
    """What a suspended flow waits on: its tag, or its sleep's end, and when its timer fires."""
    if wake_at is None:
        return tag or ""
    if tag and tag.startswith(SLEEP_PREFIX):
        return f"sleep until {when(wake_at)}"
    return f"{tag or ''} (times out {when(wake_at)})"


def pretty(text: str | None) -> str:
    """Stored JSON text, indented for reading (as it is when it does not parse)."""
    if text is None:
        return "null"
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def duration(seconds: float) -> str:
    """A short duration in words: µs below a millisecond, ms below a second, else seconds."""
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def badge(status: str) -> str:
    """A status as a coloured tag."""
    return f'<span class="st st-{h(status)}">{h(status)}</span>'


def csrf_input(csrf: str) -> str:
    """The hidden CSRF field every form carries."""
    return f'<input type="hidden" name="{CSRF_FIELD}" value="{h(csrf)}">'


NAV = (("/", "Flows", "flows"), ("/peers", "Peers", "peers"), ("/timers", "Timers", "timers"),
       ("/metrics", "Metrics", "metrics"))


def layout(title: str, body: str, *, instance: str, active: str = "", nonce: str = "", csrf: str = "",
           signed_in: bool = False) -> str:
    """A whole page: head, navigation, `body`."""
    links = []
    for href, label, key in NAV:
        links.append(f'<a href="{href}"{" class=on" if key == active else ""}>{label}</a>')
    if signed_in:
        links.append(f'<form method="post" action="/logout" style="display:inline">{csrf_input(csrf)}'
                     f'<button type="submit">Log out</button></form>')
    script = (f'<script nonce="{h(nonce)}">{CHECK_JSON}</script>' if nonce else "")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<title>{h(title)} · fedflow {h(instance)}</title><style>{STYLE}</style></head><body>'
            f'<header><b>fedflow · {h(instance)}</b>{"".join(links)}</header><main>{body}</main>{script}'
            f'</body></html>')


CHECK_JSON = ("document.addEventListener('submit',function(e){var t=e.target.querySelector('textarea[name=value]');"
              "if(!t)return;var o=e.target.querySelector('.jserr');try{JSON.parse(t.value);o.textContent='';}"
              "catch(x){e.preventDefault();o.textContent='Not valid JSON: '+x.message;}});")


# ------------------------------------------------------------------ flows
@dataclasses.dataclass(frozen=True)
class Filters:
    """What the flow list is narrowed to."""

    status: str | None = None
    flow: str | None = None
    id_prefix: str | None = None

    def query(self, **more: str | None) -> str:
        """These filters (and `more`) as a query string, "?..." or ""."""
        pairs = {"status": self.status, "flow": self.flow, "id": self.id_prefix, **more}
        kept = {k: v for k, v in pairs.items() if v}
        return "?" + urlencode(kept) if kept else ""


def flows_page(counts: dict[str, int], page: FlowPage, filters: Filters, *, after: str | None) -> str:
    """The flow list: counts per status, the filter form, one page of rows, the pager."""
    total = sum(counts.values())
    tiles = [f'<a href="/{Filters(None, filters.flow, filters.id_prefix).query()}"'
             f'{" class=on" if not filters.status else ""}>all <b>{total}</b></a>']
    for status in sorted(STATUSES):
        on = " class=on" if filters.status == status else ""
        query = Filters(status, filters.flow, filters.id_prefix).query()
        tiles.append(f'<a href="/{query}"{on}>{badge(status)} <b>{counts.get(status, 0)}</b></a>')
    options = "".join(f'<option value="{s}"{" selected" if filters.status == s else ""}>{s}</option>'
                      for s in sorted(STATUSES))
    form = (f'<form class="filter" method="get" action="/"><div><label for="f-status">Status</label>'
            f'<select id="f-status" name="status"><option value="">any</option>{options}</select></div>'
            f'<div><label for="f-flow">Flow name</label><input id="f-flow" name="flow" value="{h(filters.flow)}">'
            f'</div><div><label for="f-id">Id starts with</label><input id="f-id" name="id" '
            f'value="{h(filters.id_prefix)}"></div><div><button type="submit">Filter</button></div></form>')
    rows = []
    for f in page.flows:
        rows.append(f'<tr><td class="id"><a href="{flow_url(f.id)}">{h(f.id)}</a></td><td>{h(f.name or "-")}</td>'
                    f'<td>{badge(f.status)}</td><td>{h(waiting_text(f.waiting, f.wake_at))}</td>'
                    f'<td>{h(f.owner or "")}</td>'
                    f'<td>{when(f.updated)}</td></tr>')
    table = ('<div class="scroll"><table><thead><tr><th>Id</th><th>Flow</th><th>Status</th><th>Waiting on / wakes</th>'
             '<th>Owner</th><th>Updated</th></tr></thead><tbody>'
             + ("".join(rows) or '<tr><td colspan="6" class="muted">No flows match.</td></tr>')
             + "</tbody></table></div>")
    pager = []
    if after:
        pager.append(f'<a href="/{filters.query()}">First page</a>')
    if page.next_token:
        pager.append(f'<a rel="next" href="/{filters.query(page=page.next_token)}">Next page</a>')
    return (f'<h1>Flows</h1><div class="counts">{"".join(tiles)}</div>{form}{table}'
            f'<div class="pager">{"".join(pager)}</div><p class="muted">Newest first.</p>')


def _value_cell(text: str | None) -> str:
    if text is None:
        return ""
    if len(text) <= PREVIEW_CHARS:
        return f"<code>{h(text)}</code>"
    return f"<details><summary><code>{h(text[:PREVIEW_CHARS])}…</code></summary><pre>{h(text)}</pre></details>"


def _event(e: Event) -> str:
    took = f' <span class="muted">({duration(e.seconds)})</span>' if e.seconds is not None else ""
    body = f'<div class="err">{h(e.error)}</div>' if e.error else _value_cell(e.value)
    bad = " bad" if e.error else ""
    return f'<li class="k-{h(e.kind)}{bad}"><b>{e.n}.</b> {h(e.title)}{took}<div>{body}</div></li>'


def flow_page(rec: FlowRecord, events: Sequence[Event], *, csrf: str, message: str = "", error: str = "",
              value: str = "") -> str:
    """One flow: its fields, what it waits on, its result or error, its journal, and its actions."""
    parts = [f'<h1>Flow <span class="id">{h(rec.id)}</span></h1>']
    if message:
        parts.append(f'<p class="msg">{h(message)}</p>')
    if error:
        parts.append(f'<p class="err">{h(error)}</p>')
    parts.append(f'<dl><dt>Status</dt><dd>{badge(rec.status)}</dd><dt>Flow</dt><dd>{h(rec.name or "(anonymous)")}'
                 f'</dd><dt>Owner</dt><dd>{h(rec.owner or "this instance")}</dd><dt>Epoch</dt><dd>{rec.epoch}</dd>'
                 f'<dt>Created</dt><dd>{when(rec.created)}</dd><dt>Updated</dt><dd>{when(rec.updated)}</dd></dl>')
    parts.append(f"<h2>Input</h2><pre>{h(pretty(rec.input))}</pre>")
    if rec.status == SUSPENDED:
        parts.append(_pending(rec, csrf, value))
    if rec.result is not None:
        parts.append(f"<h2>Result</h2><pre>{h(pretty(rec.result))}</pre>")
    if rec.error is not None:
        parts.append(f'<h2>Error</h2><div class="err"><pre>{h(_error_text(rec.error))}</pre></div>')
    if rec.status in LIVE:
        parts.append(f'<form method="post" action="{flow_url(rec.id, "cancel")}">{csrf_input(csrf)}'
                     f'<button class="danger" type="submit">Cancel this flow…</button></form>')
    steps = "".join(_event(e) for e in events) or '<li class="muted">Nothing journaled yet.</li>'
    parts.append(f'<h2>Journal ({len(events)} entries)</h2><ol class="tl">{steps}</ol>')
    return "".join(parts)


def _error_text(text: str) -> str:
    try:
        err = json.loads(text)
    except ValueError:
        return text
    if isinstance(err, dict) and "type" in err:
        return f"{err.get('type')}: {err.get('message', '')}"
    return pretty(text)


def _timer_box(rec: FlowRecord, csrf: str) -> str:
    """What a flow waiting on a timer shows: when it fires, and a button that fires it now."""
    sleeping = (rec.waiting or "").startswith(SLEEP_PREFIX)
    what = "Sleeps until" if sleeping else "Times out at"
    return (f'<p>{what} <b>{when(rec.wake_at)}</b> ({relative(rec.wake_at or 0.0, time.time())}).</p>'
            f'<form method="post" action="{flow_url(rec.id, "wake")}">{csrf_input(csrf)}'
            f'<input type="hidden" name="tag" value="{h(rec.waiting)}">'
            f'<button type="submit">{"Wake it now" if sleeping else "Time it out now"}…</button></form>')


def _pending(rec: FlowRecord, csrf: str, value: str) -> str:
    out = [f'<div class="box"><h2>Waiting on <code>{h(rec.waiting)}</code></h2>']
    if rec.wake_at is not None:
        out.append(_timer_box(rec, csrf))
    if (rec.waiting or "").startswith(SLEEP_PREFIX):
        return "".join(out) + "</div>"  # a sleep takes no resume value: only its timer (or a wake) ends it
    if rec.request is not None:
        try:
            kind, payload = json.loads(rec.request)
            out.append(f'<p>Host request <b>{h(kind)}</b> with payload</p>'
                       f'<pre>{h(json.dumps(payload, indent=2, ensure_ascii=False))}</pre>')
        except (ValueError, TypeError):
            out.append(f"<pre>{h(rec.request)}</pre>")
    out.append(f'<form method="post" action="{flow_url(rec.id, "resume")}">{csrf_input(csrf)}'
               f'<input type="hidden" name="tag" value="{h(rec.waiting)}">'
               f'<label for="resume-value">Resume with this JSON value</label>'
               f'<textarea id="resume-value" name="value" placeholder="e.g. true, &quot;approved&quot; or '
               f'{{&quot;n&quot;: 1}}" required>{h(value)}</textarea><p class="jserr err-js"></p>'
               f'<button type="submit">Resume…</button></form></div>')
    return "".join(out)


def confirm_page(rec: FlowRecord, action: str, fields: dict[str, str], *, csrf: str) -> str:
    """Ask before `action` (resume or cancel) is applied; `fields` are posted again on confirming."""
    hidden = "".join(f'<input type="hidden" name="{h(k)}" value="{h(v)}">' for k, v in fields.items())
    if action == "wake":
        what = (f'<p>Fire the timer of flow <b class="id">{h(rec.id)}</b> (waiting on '
                f'<code>{h(fields.get("tag"))}</code>) now?</p>')
        button = '<button type="submit">Yes, fire it</button>'
    elif action == "resume":
        what = (f'<p>Resume flow <b class="id">{h(rec.id)}</b>, waiting on <code>{h(fields.get("tag"))}</code>, '
                f'with this value?</p><pre>{h(fields.get("value"))}</pre>')
        button = '<button type="submit">Yes, resume it</button>'
    else:
        what = (f'<p>Cancel flow <b class="id">{h(rec.id)}</b> (now {badge(rec.status)})? A cancelled flow '
                f'cannot be resumed.</p>')
        button = '<button class="danger" type="submit">Yes, cancel it</button>'
    return (f'<h1>Confirm</h1><div class="box">{what}<form method="post" action="{flow_url(rec.id, action)}">'
            f'{csrf_input(csrf)}{hidden}<input type="hidden" name="confirm" value="yes">{button} '
            f'<a href="{flow_url(rec.id)}">No, go back</a></form></div>')


# ------------------------------------------------------------------ peers, timers, login, errors
@dataclasses.dataclass(frozen=True)
class PeerRow:
    """One peer as the peers page shows it."""

    name: str
    address: str | None
    serving: bool | None
    last_contact: tuple[float, str] | None


@dataclasses.dataclass(frozen=True)
class SlotRow:
    """One replica slot this instance holds."""

    source: str
    flows: int | None
    size: int
    stored: float | None


def peers_page(peers: Iterable[PeerRow], slots: Iterable[SlotRow]) -> str:
    """Each peer's address, health and last contact; the replica slots held here."""
    rows = []
    for p in peers:
        health = {True: "serving", False: "not serving", None: "unknown"}[p.serving]
        contact = (f"{when(p.last_contact[0])} ({h(p.last_contact[1])})" if p.last_contact else
                   '<span class="muted">none since start</span>')
        rows.append(f'<tr><td>{h(p.name)}</td><td><code>{h(p.address or "in-process")}</code></td>'
                    f'<td><span class="st st-{"done" if p.serving else "failed"}">{health}</span></td>'
                    f'<td>{contact}</td></tr>')
    peer_table = ('<div class="scroll"><table><thead><tr><th>Peer</th><th>Address</th><th>Health</th>'
                  '<th>Last contact</th></tr></thead><tbody>'
                  + ("".join(rows) or '<tr><td colspan="4" class="muted">No peers.</td></tr>')
                  + "</tbody></table></div>")
    slot_rows = [f'<tr><td>{h(s.source)}</td><td>{"-" if s.flows is None else s.flows}</td><td>{s.size:,}</td>'
                 f'<td>{when(s.stored) if s.stored else "before this start"}</td></tr>' for s in slots]
    slot_table = ('<div class="scroll"><table><thead><tr><th>Source</th><th>Flows</th><th>Bytes</th><th>Stored</th>'
                  '</tr></thead><tbody>'
                  + ("".join(slot_rows) or '<tr><td colspan="4" class="muted">No replicas held.</td></tr>')
                  + "</tbody></table></div>")
    return f"<h1>Peers</h1>{peer_table}<h2>Replica slots held here</h2>{slot_table}"


#: Timers listed on the timers page (the earliest ones); the page says how many more wait.
TIMERS_SHOWN = 500


def _schedule_row(s: dict[str, Any], now: float) -> str:
    cadence = f"cron <code>{h(s.get('cron'))}</code> (UTC)" if s.get("cron") else f"every {h(s.get('every'))} s"
    flags = ", ".join(f for f, on in (("paused", s.get("paused")), ("catchup", s.get("catchup"))) if on)
    next_at = s.get("next_at")
    nxt = f"{when(next_at)} ({relative(next_at, now)})" if isinstance(next_at, int | float) else "-"
    return (f'<tr><td>{h(s.get("name"))}</td><td>{h(s.get("flow"))}</td><td>{cadence}</td><td>{nxt}</td>'
            f'<td>{h(s.get("overlap"))}</td><td>{h(flags or "-")}</td>'
            f'<td>{_value_cell(json.dumps(s.get("input"), ensure_ascii=False, default=str))}</td></tr>')


def timers_page(timers: Sequence[tuple[str, str, float]], schedules: Sequence[dict[str, Any]],
                now: float) -> str:
    """The engine's schedules (`Engine.schedules()`) and the timers waiting to fire
    (`Engine.timers()`: id, tag, wake time), earliest first, as of `now`."""
    sched_rows = "".join(_schedule_row(s, now) for s in schedules)
    sched_table = ('<div class="scroll"><table><thead><tr><th>Schedule</th><th>Flow</th><th>When</th>'
                   '<th>Next tick</th><th>Overlap</th><th>Flags</th><th>Input</th></tr></thead><tbody>'
                   + (sched_rows or '<tr><td colspan="7" class="muted">No schedules.</td></tr>')
                   + "</tbody></table></div>")
    timer_rows = "".join(
        f'<tr><td class="id"><a href="{flow_url(fid)}">{h(fid)}</a></td><td><code>{h(tag)}</code></td>'
        f'<td>{when(wake_at)}</td><td>{"due, firing" if wake_at <= now else relative(wake_at, now)}</td></tr>'
        for fid, tag, wake_at in timers[:TIMERS_SHOWN])
    more = (f'<p class="muted">{len(timers) - TIMERS_SHOWN:,} later timers are not shown.</p>'
            if len(timers) > TIMERS_SHOWN else "")
    timer_table = ('<div class="scroll"><table><thead><tr><th>Flow</th><th>Waiting on</th><th>Fires at</th>'
                   '<th>In</th></tr></thead><tbody>'
                   + (timer_rows or '<tr><td colspan="4" class="muted">No timers.</td></tr>')
                   + "</tbody></table></div>")
    return (f"<h1>Schedules and timers</h1><h2>Schedules ({len(schedules)})</h2>{sched_table}"
            f"<h2>Timers ({len(timers)})</h2>{timer_table}{more}")


def login_page(next_path: str, csrf: str, failed: bool) -> str:
    """The token form."""
    bad = '<p class="err">That is not the token.</p>' if failed else ""
    return (f'<h1>Sign in</h1>{bad}<form method="post" action="/login" class="box">{csrf_input(csrf)}'
            f'<input type="hidden" name="next" value="{h(next_path)}"><label for="token">The instance\'s token '
            f'(its --token-file)</label><input id="token" type="password" name="token" autocomplete="current-password"'
            f' required autofocus> <button type="submit">Sign in</button></form>')


def message_page(title: str, message: str) -> str:
    """A page that says one thing (an error, a missing flow)."""
    return f'<h1>{h(title)}</h1><p class="err">{h(message)}</p><p><a href="/">Back to the flows</a></p>'
