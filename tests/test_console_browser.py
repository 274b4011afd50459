"""The web console in a real browser: headless Debian Chromium driven by Playwright (`make chromium`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect, sync_playwright

try:
    from console_support import SCRIPT, console_on, define_flows, demo_engine, fill, launch
    from support import unique
except ImportError:  # tests/ imported as a package
    from tests.console_support import SCRIPT, console_on, define_flows, demo_engine, fill, launch
    from tests.support import unique


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as pw:
        chromium = launch(pw)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    dialogs: list[str] = []
    opened.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    opened.dialogs = dialogs
    yield opened
    context.close()


@pytest.fixture
def site() -> Iterator[tuple[Any, dict[str, str], str]]:
    names = define_flows(unique("web"))
    engine = demo_engine(unique("console"), names)
    with console_on(engine) as base:
        fill(engine, names)  # once the console watches: step times are known only for steps it saw run
        yield engine, names, base
    engine.close()


def test_list_shows_flows_and_filters_by_status(site: tuple, page: Any) -> None:
    _engine, _names, base = site
    page.goto(base + "/")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(7)
    expect(page.locator("tbody")).to_contain_text("post-2")
    page.select_option("#f-status", "suspended")
    page.click("text=Filter")
    expect(rows).to_have_count(4)  # three posts and the order waiting for approval
    expect(page.locator("tbody")).not_to_contain_text("echo-1")
    assert "status=suspended" in page.url


def test_list_pages_newest_first(site: tuple, page: Any) -> None:
    engine, names, base = site
    for i in range(105):
        engine.start(names["echo"], i, id=f"bulk-{i:03d}")
    page.goto(base + "/?flow=" + names["echo"])
    expect(page.locator("tbody tr").first).to_contain_text("bulk-104")
    expect(page.locator("tbody tr")).to_have_count(100)
    page.click("a[rel=next]")
    expect(page.locator("tbody tr")).to_have_count(6)  # bulk-005 .. bulk-000 and echo-1
    expect(page.locator("tbody tr").last).to_contain_text("echo-1")


def test_open_a_flow_shows_input_status_and_timeline(site: tuple, page: Any) -> None:
    _engine, _names, base = site
    page.goto(base + "/")
    page.click("a:text-is('order-1')")
    expect(page.locator("h1")).to_contain_text("order-1")
    expect(page.locator("dl")).to_contain_text("suspended")
    expect(page.locator(".box h2")).to_contain_text("approve")
    timeline = page.locator("ol.tl")
    expect(timeline).to_contain_text("step order")
    expect(timeline).to_contain_text("remote call quote on peer pricing")
    expect(timeline.locator("li.k-remote")).to_contain_text(re.compile(r"\((\d+ µs|[\d.]+ m?s)\)"))  # its time
    expect(timeline).to_contain_text('"total": 39.0')


def test_resume_through_the_form_and_see_it_done(site: tuple, page: Any) -> None:
    engine, _names, base = site
    page.goto(base + "/flows/post-1")
    page.fill("#resume-value", "{not json")
    page.click("text=Resume…")
    expect(page.locator(".jserr")).to_contain_text("Not valid JSON")  # checked before it is sent
    assert engine.status("post-1") == "suspended"
    page.fill("#resume-value", '"approved"')
    page.click("text=Resume…")
    expect(page.locator("h1")).to_have_text("Confirm")
    expect(page.locator("pre")).to_have_text('"approved"')
    assert engine.status("post-1") == "suspended", "nothing happens before the confirmation"
    page.click("text=Yes, resume it")
    expect(page.locator(".msg")).to_contain_text("Resumed")
    expect(page.locator("dl")).to_contain_text("done")
    expect(page.locator("ol.tl")).to_contain_text("resumed at tag review")
    assert engine.result("post-1") == {"draft": {"title": "Post 1", "body": "Hello"}, "verdict": "approved"}


def test_cancel_one_flow(site: tuple, page: Any) -> None:
    engine, _names, base = site
    page.goto(base + "/flows/post-0")
    page.click("text=Cancel this flow…")
    expect(page.locator("h1")).to_have_text("Confirm")
    page.click("text=Yes, cancel it")
    expect(page.locator(".msg")).to_contain_text("Cancelled")
    expect(page.locator("dl")).to_contain_text("cancelled")
    assert engine.status("post-0") == "cancelled"
    assert engine.status("post-2") == "suspended", "only that flow"


def test_a_script_input_is_shown_as_text(site: tuple, page: Any) -> None:
    engine, names, base = site
    engine.start(names["review"], {"note": SCRIPT}, id=SCRIPT)
    page.goto(base + "/")
    expect(page.locator("tbody")).to_contain_text(SCRIPT)
    page.click("tbody a >> nth=0")
    expect(page.locator("h1")).to_contain_text(SCRIPT)
    expect(page.locator("pre").first).to_contain_text(SCRIPT)
    assert page.locator("main script").count() == 0
    assert page.dialogs == [], "no script from a value ever ran"


def test_a_failed_flow_shows_its_error(site: tuple, page: Any) -> None:
    _engine, _names, base = site
    page.goto(base + "/?status=failed")
    page.click("a:text-is('publish-1')")
    expect(page.locator("dl")).to_contain_text("failed")
    expect(page.locator("main")).to_contain_text("ValueError: cannot publish {'title': None}: the title is missing")
    expect(page.locator("ol.tl li.bad")).to_contain_text("step publish")
    expect(page.locator("form[action$='/cancel']")).to_have_count(0)  # nothing to cancel


def test_token_login(page: Any) -> None:
    names = define_flows(unique("tok"))
    engine = demo_engine(unique("console"), names)
    engine.start(names["review"], 1, id="secret-flow")
    try:
        with console_on(engine, token="s3cret-token") as base:
            page.goto(base + "/flows/secret-flow")
            expect(page.locator("h1")).to_have_text("Sign in")
            expect(page.locator("dl")).to_have_count(0)  # none of the flow is shown
            page.fill("#token", "wrong")
            page.click("button:text('Sign in')")
            expect(page.locator(".err")).to_contain_text("not the token")
            page.fill("#token", "s3cret-token")
            page.click("button:text('Sign in')")
            expect(page.locator("h1")).to_contain_text("secret-flow")  # back where it was going
            cookie = next(c for c in page.context.cookies() if c["name"] == "fedflow_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and "s3cret" not in cookie["value"]
            page.click("text=Cancel this flow…")
            page.click("text=Yes, cancel it")
            expect(page.locator("dl")).to_contain_text("cancelled")
            page.click("button:text('Log out')")
            expect(page.locator("h1")).to_have_text("Sign in")
    finally:
        engine.close()
