"""Every fenced block of README.md and docs/*.md runs and prints what the page says (see tests/docblocks.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

try:
    from docblocks import REPO, RUN, SHOWN, Session, blocks
except ImportError:  # tests/ imported as a package
    from tests.docblocks import REPO, RUN, SHOWN, Session, blocks

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_block_of_the_page_runs_and_prints_what_it_says(page: Path, tmp_path: Path) -> None:
    session = Session(page, tmp_path)
    try:
        for block in blocks(page):
            session.run_block(block)
    finally:
        session.close()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_block_is_run_written_or_shown(page: Path) -> None:
    untagged = [f"line {b.line}: ```{b.lang}" for b in blocks(page)
                if "file" not in b.options and b.lang not in RUN | SHOWN | {"output"}]
    assert not untagged, f"{page.name}: blocks with no known language: {untagged}"


def test_the_readme_is_short() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= 350, f"README.md has {lines} lines; move detail into docs/"


def test_the_first_flow_is_run_twice() -> None:
    first = next(b for b in blocks(REPO / "README.md") if b.lang == "python")
    assert first.options.get("repeat") == "2", "the README's first flow must be runnable again (python repeat=2)"


def test_make_demo_ends_by_saying_how_to_reach_fedflow() -> None:
    plan = subprocess.run(["make", "-n", "demo"], cwd=REPO, capture_output=True, text=True, timeout=30).stdout
    assert ". .venv/bin/activate" in plan and ".venv/bin/fedflow" in plan, plan
