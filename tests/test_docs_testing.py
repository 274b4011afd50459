"""docs/testing.md shows the real example: each block of test code is, verbatim, one file
of peers/tests (which `make test` runs), every file there is shown, and the other Python
blocks run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "testing.md"
EXAMPLES = ROOT / "peers" / "tests"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def python_blocks() -> list[str]:
    return BLOCK.findall(PAGE.read_text())


def test_every_example_file_is_shown_verbatim_under_its_name() -> None:
    page = PAGE.read_text()
    blocks = [block for block in python_blocks() if "def test_" in block]
    files = sorted(EXAMPLES.glob("test_*.py"))
    assert files, "peers/tests has example test files"
    assert sorted(blocks) == sorted(path.read_text() for path in files)
    for path in files:
        assert f"`peers/tests/{path.name}`:\n\n```python\n{path.read_text()}```" in page


@pytest.mark.parametrize("block", [b for b in python_blocks() if "def test_" not in b])
def test_the_other_python_blocks_run(block: str) -> None:
    exec(compile(block, str(PAGE), "exec"), {"__name__": "docs_testing_block"})
