"""JSON on the command line, in fedflow's tagged form (see `fedflow.values`): the
arguments verbs read (`--input`, a resume's value) and the results they print."""

from __future__ import annotations

import json
from typing import Any

from .. import values
from ..errors import UnsupportedValue
from .config import UsageError

__all__ = ["parse_json_arg", "to_json"]


def parse_json_arg(text: str | None) -> Any:
    """A JSON argument as plain data (None when absent); UsageError when it is not valid (tagged) JSON.

    >>> parse_json_arg('{"raw": {"$bytes": "AA=="}, "n": 18446744073709551617}')
    {'raw': b'\\x00', 'n': 18446744073709551617}
    """
    if text is None:
        return None
    try:
        return values.loads(text, "JSON")
    except UnsupportedValue as exc:
        shown = text if len(text) <= 40 else text[:37] + "..."
        if not isinstance(exc.__cause__, json.JSONDecodeError):  # valid JSON, but a bad tagged value
            raise UsageError(f"the JSON argument {shown!r} is refused: {exc}") from exc
        detail = str(exc).removeprefix("JSON is not valid tagged JSON: ")
        raise UsageError(f"the JSON argument {shown!r} is not valid JSON ({detail}); quote strings in JSON "
                         f"('\"text\"'), e.g. 41, '\"hello\"' or '{{\"n\": 1}}'") from exc


def to_json(obj: Any) -> str:
    """One line of JSON with values in the tagged form (exact ints, bytes and Fail tagged)."""
    return json.dumps(values.encode(obj, "output"), ensure_ascii=False, allow_nan=False)
