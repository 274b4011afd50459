"""Regenerate the console screenshots in docs/ (`make screenshots`): each page, in headless Debian Chromium."""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).parent))
from console_support import console_on, define_flows, demo_engine, fill, launch

DOCS = Path(__file__).resolve().parent.parent / "docs"


def main() -> None:
    """Start a demo engine with its console and save docs/console-*.png."""
    names = define_flows("shop")
    engine = demo_engine("shop", names)
    with console_on(engine) as base, sync_playwright() as pw:
        fill(engine, names)
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1100, "height": 720})
        shots = {"flows": "/", "flow": "/flows/order-1", "failed": "/flows/publish-1", "peers": "/peers"}
        for name, path in shots.items():
            page.goto(base + path)
            page.screenshot(path=DOCS / f"console-{name}.png", full_page=True)
        page.goto(base + "/flows/post-0")
        page.fill("#resume-value", '{"approved": true, "by": "ana"}')
        page.click("text=Resume…")
        page.screenshot(path=DOCS / "console-confirm.png", full_page=True)
        phone = browser.new_page(viewport={"width": 390, "height": 800}, device_scale_factor=2)
        phone.goto(base + "/")
        phone.screenshot(path=DOCS / "console-phone.png")
        browser.close()
    with console_on(engine, token="demo-token") as base, sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1100, "height": 400})
        page.goto(base + "/")
        page.screenshot(path=DOCS / "console-login.png")
        browser.close()
    engine.close()
    print(f"screenshots written to {DOCS}/console-*.png")


if __name__ == "__main__":
    main()
