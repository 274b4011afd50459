"""Every example in the docstrings of the public modules runs and is right."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["fedflow", "fedflow.railway", "fedflow.values", "fedflow.combinators"]


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests_pass(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0, f"{name} has no doctest examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest examples in {name} failed"
