"""The console over plain HTTP (no browser): access rules, CSRF, actions, /metrics, and `serve --http` flags."""

from __future__ import annotations

import http.client
import re
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from fedflow import (
    Engine,
    defflow,
    journal,
    node,
    observe,
    remote_failover,
    remote_node,
    request,
    sequence,
    sleep,
    suspend,
)
from fedflow.cli import config
from fedflow.cli import main as cli
from fedflow.cli.config import ConfigError
from fedflow.console import Console
from fedflow.console.timeline import timeline
from fedflow.testing import FakeClock

try:
    from support import unique
except ImportError:  # tests/ imported as a package
    from tests.support import unique


class Client:
    """A tiny HTTP client that keeps cookies, does not follow redirects, and sends a Host header of choice."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        self.token = token

    def send(self, method: str, path: str, form: dict[str, str] | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        sent = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        body = urlencode(form or {}) if method == "POST" else None
        if body is not None:
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        sent.update(headers or {})
        try:
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8")
            for value in resp.headers.get_all("Set-Cookie") or []:
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";")[0]
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, text
        finally:
            conn.close()

    def csrf(self) -> str:
        for page in ("/", "/login"):  # the list, or the sign-in form when the list needs the token
            if "fedflow_csrf" not in self.cookies:
                self.send("GET", page)
        return self.cookies["fedflow_csrf"]


@pytest.fixture
def flows() -> dict[str, str]:
    prefix = unique("con")
    names = {"wait": f"{prefix}_wait", "remote": f"{prefix}_remote", "render": f"{prefix}_render"}
    defflow(names["wait"], node(lambda x: {"input": x, "answer": suspend("go")}))
    defflow(names["remote"], sequence(remote_node("calc", "inc"), remote_failover(["down", "calc"], "inc", node(abs))))
    defflow(names["render"], node(lambda x: request("render", {"scene": x})))
    return names


@pytest.fixture
def served(flows: dict[str, str]) -> Iterator[tuple[Engine, Console, Client]]:
    engine = Engine(name=unique("console"))
    engine.peers.register("calc", {"inc": lambda x: x + 1})
    console = Console("127.0.0.1:0")
    console.start(engine)
    yield engine, console, Client(console.port)
    console.close()
    engine.close()


def test_healthz_and_an_unknown_path(served: tuple) -> None:
    _engine, _console, client = served
    assert client.send("GET", "/healthz")[::2] == (200, "ok\n")
    status, _, body = client.send("GET", "/nothing/here")
    assert status == 404 and "nothing at /nothing/here" in body


def test_a_post_without_the_csrf_field_changes_nothing(served: tuple, flows: dict) -> None:
    engine, _console, client = served
    engine.start(flows["wait"], 1, id="w-1")
    client.csrf()
    for form in ({"value": "1", "tag": "go", "confirm": "yes"},
                 {"value": "1", "tag": "go", "confirm": "yes", "csrf": "forged"}):
        status, _, body = client.send("POST", "/flows/w-1/resume", form)
        assert status == 403 and "CSRF" in body
    assert client.send("POST", "/flows/w-1/cancel", {"confirm": "yes"})[0] == 403
    assert engine.status("w-1") == "suspended"


def test_resume_asks_first_then_applies_at_the_tag_shown(served: tuple, flows: dict) -> None:
    engine, _console, client = served
    engine.start(flows["wait"], 1, id="w-2")
    form = {"value": '{"ok": true}', "tag": "go", "csrf": client.csrf()}
    status, _, body = client.send("POST", "/flows/w-2/resume", form)
    assert status == 200 and "Yes, resume it" in body and engine.status("w-2") == "suspended"
    status, headers, _ = client.send("POST", "/flows/w-2/resume", {**form, "confirm": "yes"})
    assert status == 303 and headers["location"] == "/flows/w-2?did=resumed"
    assert engine.result("w-2") == {"input": 1, "answer": {"ok": True}}


@pytest.mark.parametrize(("value", "tag", "code", "needle"), [
    ("{bad", "go", 400, "not valid JSON"), ("", "go", 400, "not valid JSON"), ("1", "other", 409, "not waiting on")])
def test_a_bad_value_or_a_stale_tag_is_refused_and_changes_nothing(served: tuple, flows: dict, value: str, tag: str,
                                                                   code: int, needle: str) -> None:
    engine, _console, client = served
    engine.start(flows["wait"], 1, id="w-3")
    form = {"value": value, "tag": tag, "csrf": client.csrf(), "confirm": "yes"}
    status, _, body = client.send("POST", "/flows/w-3/resume", form)
    assert status == code and needle in body
    assert engine.status("w-3") == "suspended"


def test_cancel_asks_first(served: tuple, flows: dict) -> None:
    engine, _console, client = served
    engine.start(flows["wait"], 1, id="w-4")
    assert "Yes, cancel it" in client.send("POST", "/flows/w-4/cancel", {"csrf": client.csrf()})[2]
    assert engine.status("w-4") == "suspended"
    assert client.send("POST", "/flows/w-4/cancel", {"csrf": client.csrf(), "confirm": "yes"})[0] == 303
    assert engine.status("w-4") == "cancelled"


def test_a_host_request_shows_its_kind_and_payload(served: tuple, flows: dict) -> None:
    engine, _console, client = served
    engine.start(flows["render"], "<b>scene</b>", id="r-1")
    body = client.send("GET", "/flows/r-1")[2]
    assert "Host request <b>render</b>" in body and "&lt;b&gt;scene&lt;/b&gt;" in body and "<b>scene" not in body


def test_a_loopback_console_answers_only_to_a_loopback_host_name(served: tuple) -> None:
    _engine, _console, client = served
    status, _, _ = client.send("GET", "/", headers={"Host": "attacker.example:80"})
    assert status == 421


def test_with_a_token_pages_redirect_to_login_and_metrics_need_the_bearer(flows: dict) -> None:
    with Engine(name=unique("tok")) as engine:
        engine.start(flows["wait"], 1, id="t-1")
        console = Console("127.0.0.1:0", "tok-123")
        console.start(engine)
        try:
            anonymous = Client(console.port)
            status, headers, _ = anonymous.send("GET", "/flows/t-1")
            assert status == 303 and headers["location"] == "/login?next=%2Fflows%2Ft-1"
            assert anonymous.send("GET", "/metrics")[0] == 401
            assert anonymous.send("GET", "/healthz")[0] == 200
            status, _, _ = anonymous.send("POST", "/flows/t-1/cancel", {"csrf": anonymous.csrf(), "confirm": "yes"})
            assert status == 401 and engine.status("t-1") == "suspended"
            status, headers, _ = anonymous.send("POST", "/login", {"token": "tok-123", "next": "//evil.example/",
                                                                   "csrf": anonymous.csrf()})
            assert status == 303 and headers["location"] == "/", "never sent off the console"
            assert "t-1" in anonymous.send("GET", "/")[2], "the cookie signs in"
            bearer = Client(console.port, token="tok-123")
            assert bearer.send("GET", "/metrics")[0] == 200
            assert bearer.send("POST", "/flows/t-1/cancel", {"confirm": "yes"})[0] == 303, "Bearer needs no CSRF"
            assert engine.status("t-1") == "cancelled"
        finally:
            console.close()


def test_metrics_count_flows_steps_and_peer_calls(served: tuple, flows: dict) -> None:
    engine, _console, client = served
    engine.start(flows["wait"], 1, id="m-1")
    assert engine.start(flows["remote"], 1, id="m-2") == 3
    engine.resume("m-1", 2)
    status, headers, text = client.send("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")

    def value(sample: str) -> float:
        found = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.M)
        assert found, f"no {sample} in:\n{text}"
        return float(found.group(1))

    assert value('fedflow_flows{status="done"}') == 2 and value('fedflow_flows{status="suspended"}') == 0
    assert value("fedflow_flows_started_total") == 2
    assert value('fedflow_flows_finished_total{status="done"}') == 2
    assert value("fedflow_resume_seconds_count") == 1
    assert value('fedflow_step_seconds_count{kind="remote"}') == 1
    assert value('fedflow_step_seconds_count{kind="failover"}') == 1
    assert value('fedflow_peer_calls_total{outcome="ok",peer="calc"}') == 2
    assert value('fedflow_peer_calls_total{outcome="UnknownPeer",peer="down"}') == 1
    assert value('fedflow_store_commit_seconds_count{operation="create"}') >= 1


def test_the_peers_page_shows_health_and_last_contact(served: tuple, flows: dict) -> None:
    engine, _console, client = served
    engine.start(flows["remote"], 1, id="p-1")
    body = client.send("GET", "/peers")[2]
    assert "<td>calc</td>" in body and ">serving<" in body and re.search(r"UTC \((ok|health check)\)", body)


def test_close_removes_every_wrapper(flows: dict) -> None:
    with Engine(name=unique("undo")) as engine:
        console = Console("127.0.0.1:0")
        console.start(engine)
        assert "resume" in vars(engine) and "create" in vars(engine.store)
        assert observe._listeners and observe._timer_listeners
        console.close()
        assert not {"resume", "call_peer"} & set(vars(engine)) and "create" not in vars(engine.store)
        assert not observe._listeners and not observe._timer_listeners  # a closed console hears nothing more


def test_an_address_off_loopback_needs_a_token_or_http_insecure() -> None:
    with pytest.raises(ConfigError, match="--token-file"):
        Console("0.0.0.0:0")
    for console in (Console("0.0.0.0:0", "t"), Console("0.0.0.0:0", insecure=True)):
        console.close()


def test_a_taken_port_is_an_os_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match="pick a free"):
            Console(f"127.0.0.1:{taken.getsockname()[1]}")


def test_serve_refuses_an_open_http_before_opening_the_store(tmp_path, capsys: pytest.CaptureFixture) -> None:
    db = tmp_path / "never.db"
    code = cli.main(["serve", "--name", "x", "--listen", "127.0.0.1:0", "--db", str(db), "--http", "0.0.0.0:0"])
    assert code == 2 and "--http-insecure" in capsys.readouterr().err
    assert not db.exists()


def test_timeline_words_for_each_kind_of_entry() -> None:
    log: list[dict[str, Any]] = [
        {"t": "j", "k": "0", "n": "step order", "v": {"qty": 2}},
        {"t": "j", "k": "1", "n": "remote b.lan.price", "v": 3},
        {"t": "j", "k": "2", "n": "failover x,y.price", "v": ["peer", "y", 4]},
        {"t": "j", "k": "3", "n": "failover x,y.price", "v": ["local"]},
        {"t": "s", "tag": "request:4", "v": "frame"},
        {"t": "j", "k": "5", "n": "step pay", "e": {"type": "ValueError", "message": "no card"}},
        {"t": "s", "tag": "approve", "v": True},
    ]
    events = timeline([journal.dump(entry) for entry in log], "f-1", {"1": 0.25})
    assert [e.title for e in events] == [
        "step order", "remote call price on peer b.lan", "failover price over x,y: answered by y",
        "failover price over x,y: no peer answered, ran locally", "host answered request request:4", "step pay",
        "resumed at tag approve"]
    assert events[1].seconds == 0.25 and events[0].seconds is None
    assert events[2].value == "4" and events[5].error == "ValueError: no card"



#: 2027-01-15 08:00:00 UTC, the fake clock's start in the timer tests.
T0 = 1_800_000_000.0


@pytest.fixture
def timed() -> Iterator[tuple[Engine, FakeClock, Client, dict[str, str]]]:
    clock = FakeClock(T0)
    engine = Engine(name=unique("timed"), clock=clock)
    prefix = unique("tm")
    names = {"nap": f"{prefix}_nap", "ask": f"{prefix}_ask", "tick": f"{prefix}_tick"}
    defflow(names["nap"], node(lambda x: (sleep(60), {"slept": x})[1]))
    defflow(names["ask"], node(lambda x: suspend("answer", timeout=3600, default="<none>")))
    defflow(names["tick"], node(lambda x: x))
    console = Console("127.0.0.1:0")
    console.start(engine)
    yield engine, clock, Client(console.port), names
    console.close()
    engine.close()


def test_the_timers_page_shows_the_engines_timers_and_schedules(timed: tuple) -> None:
    engine, _clock, client, names = timed
    engine.start(names["nap"], 1, id="nap-1")
    engine.start(names["ask"], 1, id="<i>ask-1</i>")
    engine.schedule("nightly", names["tick"], {"x": "<b>"}, cron="0 3 * * *")
    status, _, body = client.send("GET", "/timers")
    assert status == 200 and "Timers (2)" in body and "Schedules (1)" in body
    nap, ask = body.index("/flows/nap-1"), body.index("/flows/%3Ci%3Eask-1%3C%2Fi%3E")
    assert nap < ask  # earliest first: the sleep (60 s) before the timeout (1 h)
    assert "2027-01-15 08:01:00 UTC" in body and "in 1 m" in body and "in 1 h" in body
    assert "&lt;i&gt;ask-1&lt;/i&gt;" in body and "<i>ask-1" not in body
    assert "nightly" in body and "0 3 * * *" in body and "2027-01-16 03:00:00 UTC" in body
    assert "&quot;&lt;b&gt;&quot;" in body and names["tick"] in body


def test_the_list_and_the_flow_page_say_when_a_timer_fires(timed: tuple) -> None:
    engine, _clock, client, names = timed
    engine.start(names["nap"], 1, id="nap-2")
    engine.start(names["ask"], 1, id="ask-2")
    body = client.send("GET", "/")[2]
    assert "sleep until 2027-01-15 08:01:00 UTC" in body and "answer (times out 2027-01-15 09:00:00 UTC)" in body
    body = client.send("GET", "/flows/nap-2")[2]
    assert "Sleeps until" in body and "Wake it now" in body and 'name="value"' not in body  # a sleep takes no value
    body = client.send("GET", "/flows/ask-2")[2]
    assert "Times out at" in body and 'name="value"' in body


def test_wake_asks_first_then_fires_the_timer_and_the_timeline_says_so(timed: tuple) -> None:
    engine, _clock, client, names = timed
    engine.start(names["nap"], 7, id="nap-3")
    tag = engine.store.get("nap-3").waiting
    form = {"tag": tag, "csrf": client.csrf()}
    status, _, body = client.send("POST", "/flows/nap-3/wake", form)
    assert status == 200 and "Yes, fire it" in body and engine.status("nap-3") == "suspended"
    status, _, body = client.send("POST", "/flows/nap-3/wake", {**form, "tag": "other", "confirm": "yes"})
    assert status == 409 and "nothing was changed" in body and engine.status("nap-3") == "suspended"
    status, headers, _ = client.send("POST", "/flows/nap-3/wake", {**form, "confirm": "yes"})
    assert status == 303 and headers["location"] == "/flows/nap-3?did=woken"
    assert engine.result("nap-3") == {"slept": 7}
    body = client.send("GET", "/flows/nap-3?did=woken")[2]
    assert "Its timer fired" in body and "sleep until 2027-01-15 08:01:00 UTC" in body
    assert "woke from sleep (its timer fired)" in body


def test_timeline_words_for_timers_patches_and_the_local_fallback() -> None:
    log = [
        {"t": "j", "k": "0", "n": "sleep", "v": [T0 + 60, False]},
        {"t": "s", "tag": "sleep:0", "v": None, "w": 1},
        {"t": "j", "k": "1", "n": "timeout go", "v": [T0, True]},
        {"t": "s", "tag": "go", "v": None, "w": 1},
        {"t": "j", "k": "patch:v2", "n": "patched", "v": True},
        {"t": "j", "k": "2/0", "n": "failover x,y.price local", "v": 5},
    ]
    titles = [e.title for e in timeline([journal.dump(entry) for entry in log], "f-2")]
    assert titles == [
        "sleep until 2027-01-15 08:01:00 UTC", "woke from sleep (its timer fired)",
        "timer on go: wait until 2027-01-15 08:00:00 UTC (already past)", "timed out waiting on go (its timer fired)",
        "patch v2: new code path", "failover price over x,y: the local fallback ran"]


def test_a_corrupt_journal_entry_is_said_on_the_flow_page(served: tuple, flows: dict) -> None:
    engine, _console, client = served
    engine.start(flows["wait"], 1, id="w-corrupt")
    engine.store.put_flows([(engine.store.get("w-corrupt"), ["not json"])])
    status, _, body = client.send("GET", "/flows/w-corrupt")
    assert status == 200 and "Cannot show the journal" in body and "is corrupt" in body


def test_metrics_count_pending_timers_and_how_late_each_fired(timed: tuple) -> None:
    engine, clock, client, names = timed
    engine.start(names["nap"], 1, id="nap-4")
    engine.start(names["nap"], 2, id="nap-5")
    engine.start(names["ask"], 1, id="ask-4")
    metrics = client.send("GET", "/metrics")[2]
    assert re.search(r"^fedflow_timers_pending 3\.0$", metrics, re.M)
    assert re.search(r"^fedflow_timer_lateness_seconds_count 0\.0$", metrics, re.M)
    engine.wake("nap-5")  # woken early by hand: not a timer falling due, so no lateness
    clock.advance(90)  # the other sleep was due at +60: it fires 30 s late
    assert engine.result("nap-4") == {"slept": 1}
    metrics = client.send("GET", "/metrics")[2]
    assert re.search(r"^fedflow_timers_pending 1\.0$", metrics, re.M)
    assert re.search(r"^fedflow_timer_lateness_seconds_count 1\.0$", metrics, re.M)
    assert re.search(r"^fedflow_timer_lateness_seconds_sum 30\.0$", metrics, re.M)
    assert re.search(r'^fedflow_timer_lateness_seconds_bucket\{le="10\.0"\} 0\.0$', metrics, re.M)
    assert re.search(r'^fedflow_timer_lateness_seconds_bucket\{le="30\.0"\} 1\.0$', metrics, re.M)


def test_http_and_http_insecure_come_from_the_config_file_too(tmp_path, capsys: pytest.CaptureFixture) -> None:
    conf = tmp_path / "a.toml"
    conf.write_text('name = "a"\nlisten = "127.0.0.1:0"\nhttp = "0.0.0.0:0"\nhttp_insecure = true\n')
    parsed = cli.build_parser()[0].parse_args(["serve", "--config", str(conf)])
    settings = config.settings(parsed)
    assert (settings.http, settings.http_insecure) == ("0.0.0.0:0", True)
    conf.write_text('name = "a"\nlisten = "127.0.0.1:0"\nhttp = "0.0.0.0:0"\ndb = "never.db"\n')
    assert cli.main(["serve", "--config", str(conf)]) == 2 and "--http-insecure" in capsys.readouterr().err
    assert not (tmp_path / "never.db").exists()
    for bad in ('http_insecure = "yes"', 'http = "nowhere"'):
        conf.write_text(f'name = "a"\nlisten = "127.0.0.1:0"\n{bad}\n')
        with pytest.raises(ConfigError, match="http"):
            config.settings(cli.build_parser()[0].parse_args(["serve", "--config", str(conf)]))
