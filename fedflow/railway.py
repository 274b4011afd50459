"""`Fail`: a business failure carried as a value, never raised by the engine.

>>> declined = fail("card declined")
>>> is_failed(declined), fail_reason(declined)
(True, 'card declined')
>>> is_failed("card declined")
False
"""

from __future__ import annotations

from typing import Any


class Fail:
    """An explicit failure value; flows downstream as data, stored and sent like any value.

    >>> Fail("no") == Fail("no")
    True
    """

    __slots__ = ("reason",)

    def __init__(self, reason: Any) -> None:
        object.__setattr__(self, "reason", reason)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Fail values are immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fail) and self.reason == other.reason

    def __hash__(self) -> int:
        return hash(("Fail", repr(self.reason)))

    def __repr__(self) -> str:
        return f"Fail({self.reason!r})"


def fail(reason: Any) -> Fail:
    """Make a failure value with `reason` (plain data).

    >>> fail("out of stock")
    Fail('out of stock')
    """
    return Fail(reason)


def is_failed(value: Any) -> bool:
    """True when `value` is a `Fail`.

    >>> is_failed(fail(1)), is_failed(1)
    (True, False)
    """
    return isinstance(value, Fail)


def fail_reason(value: Fail) -> Any:
    """The reason a `Fail` carries.

    >>> fail_reason(fail({"code": 2}))
    {'code': 2}
    """
    if not isinstance(value, Fail):
        raise TypeError(f"fail_reason() needs a Fail value, got {type(value).__name__}; test with is_failed() first")
    return value.reason
