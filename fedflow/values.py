"""The plain-data codec used at every boundary (store, wire, export, CLI).

Plain data is None, bool, int (any size), finite float, str, bytes, list
(tuples become lists), dict with str keys, and `Fail`, nested freely.
Anything else raises `UnsupportedValue` naming its path.

The text form is JSON with four tagged one-key objects, so it is exact (any other
one-key object whose key starts with "$" is refused as an unknown tag):
``{"$bytes": "<base64>"}``, ``{"$fail": <reason>}``, ``{"$map": [[k, v], ...]}``
for a one-key dict whose key starts with "$" (so user data never reads as a tag),
and ``{"$int": "<hex>"}`` for an int too long for Python's decimal conversion.
A peer call's payload and answer may also hold ``{"$text": i}`` / ``{"$blob": i}``,
naming a long str or bytes sent raw beside the text (`dumps_lifting`, `loads_lifted`);
anywhere else those two tags are refused.

A surrogate pair inside a str is joined into the one character it encodes
(a JSON reader joins the pair's escapes anyway), so a text reads back from
its JSON as itself, on the first run and on every replay alike. A lone
surrogate is kept: JSON carries it as an escape and gives it back unchanged.

>>> loads(dumps({"n": 2**64 + 1, "raw": b"\\x00", "no": fail("x")}))
{'n': 18446744073709551617, 'raw': b'\\x00', 'no': Fail('x')}
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable
from typing import Any

from .errors import UnsupportedValue
from .railway import Fail, fail

__all__ = ["check", "decode", "dump_tree", "dumps", "dumps_lifting", "encode", "loads", "loads_lifted"]

_SCALARS = (str, type(None), bool)
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Ints longer than this many bits travel as hex: Python refuses decimal text past 4,300 digits.
_DECIMAL_BITS = 12_000


def _refuse(value: Any, path: str, why: str = "") -> UnsupportedValue:
    kind = type(value).__name__
    detail = why or f"a {kind} is not plain data"
    return UnsupportedValue(
        f"{path}: {detail}; use None, bool, int, finite float, str, bytes, list, "
        f"dict with str keys or Fail", path=path)


def encode(value: Any, path: str = "value") -> Any:
    """Check `value` is plain data and return its JSON-ready tagged tree."""
    return _encode_checked(value, path, None)


def dumps_lifting(value: Any, path: str = "value", min_size: int = 4096) -> tuple[str, list[bytes]]:
    """Like `dumps`, but every str or bytes of at least `min_size` is lifted out as a blob,
    leaving ``{"$text": i}`` (UTF-8) or ``{"$blob": i}`` in the text; the text and the blobs.
    `loads_lifted` puts them back. (The wire sends blobs as raw bytes: no JSON escaping, no
    base64.)"""
    blobs: list[bytes] = []

    def lift(item: str | bytes) -> Any:
        if len(item) < min_size:
            return None
        if type(item) is bytes:
            blobs.append(item)
            return {"$blob": len(blobs) - 1}
        try:
            blobs.append(item.encode("utf-8"))
        except UnicodeEncodeError:  # a lone surrogate: leave it to the JSON text
            return None
        return {"$text": len(blobs) - 1}

    return _ENCODER.encode(_encode_checked(value, path, lift)), blobs


def _encode_checked(value: Any, path: str, lift: Callable[[str | bytes], Any] | None) -> Any:
    """`_encode`, with a value nested past Python's recursion limit refused as not plain data."""
    try:
        return _encode(value, path, lift)
    except RecursionError as exc:
        raise UnsupportedValue(f"{path}: nested too deeply to be plain data; flatten it", path=path) from exc


def _encode(value: Any, path: str, lift: Callable[[str | bytes], Any] | None) -> Any:
    kind = type(value)
    if kind is str:
        value = _joined(value)
        return value if lift is None else (lift(value) or value)
    if kind in _SCALARS:
        return value
    if kind is int:
        return value if value.bit_length() <= _DECIMAL_BITS else {"$int": hex(value)}
    if kind is float:
        if not math.isfinite(value):
            raise _refuse(value, path, f"{value!r} is not a finite float")
        return value
    if kind is list or kind is tuple:
        return [_encode(item, f"{path}[{i}]", lift) for i, item in enumerate(value)]
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _refuse(value, f"{path}[{key!r}]", f"dict key {key!r} is not a str")
            out[_joined(key)] = _encode(item, f"{path}[{key!r}]", lift)
        if len(out) == 1 and next(iter(out)).startswith("$"):
            return {"$map": [[k, v] for k, v in out.items()]}
        return out
    if kind is bytes:
        lifted = None if lift is None else lift(value)
        return lifted or {"$bytes": base64.b64encode(value).decode("ascii")}
    if kind is Fail:
        return {"$fail": _encode(value.reason, f"{path}.reason", lift)}
    raise _refuse(value, path)


def _joined(text: str) -> str:
    """`text` with every surrogate pair joined into the one character it encodes, as a JSON
    reader joins the pair's escapes, so a text reads back from its JSON as itself. A lone
    surrogate stays: JSON carries it as an escape and gives it back unchanged."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _untag(obj: dict, path: str = "value") -> Any:
    if len(obj) != 1:
        return obj
    tag, inner = next(iter(obj.items()))
    if not tag.startswith("$"):
        return obj
    if tag == "$bytes":
        if type(inner) is not str:
            raise UnsupportedValue(f"{path}: $bytes must hold a base64 string", path=path)
        try:
            return base64.b64decode(inner, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise UnsupportedValue(f"{path}: $bytes holds invalid base64 ({exc}); use standard base64 for "
                                   f"bytes", path=path) from exc
    if tag == "$fail":
        return fail(inner)
    if tag == "$int":
        if type(inner) is not str:
            raise UnsupportedValue(f"{path}: $int must hold a hex string", path=path)
        try:
            return int(inner, 16)
        except ValueError as exc:
            raise UnsupportedValue(f"{path}: $int holds invalid hex ({exc}); use hex() of the int",
                                   path=path) from exc
    if tag in _BLOB_TAGS:
        raise UnsupportedValue(f"{path}: {tag} names a blob, but no blobs came with this value", path=path)
    if tag == "$map":
        if type(inner) is not list or not all(
                type(p) is list and len(p) == 2 and type(p[0]) is str for p in inner):
            raise UnsupportedValue(f"{path}: $map must hold [[str, value], ...]", path=path)
        return {k: v for k, v in inner}
    raise UnsupportedValue(
        f"{path}: unknown tag {tag!r}; the tags are {', '.join(_TAGS)} (a typo?). An object with one "
        f"key that starts with '$' is written {{\"$map\": [[{json.dumps(tag)}, <value>]]}}", path=path)


#: The one-key tags of the text form (see the module docstring).
_TAGS = ("$bytes", "$fail", "$int", "$map")


def decode(tree: Any, path: str = "value") -> Any:
    """Turn a tagged JSON tree (as made by `encode`) back into plain data; what is not a
    valid tree raises `UnsupportedValue` naming its path below `path`."""
    try:
        return _decode(tree)
    except RecursionError as exc:
        raise UnsupportedValue(f"{path}: nested too deeply to be plain data; flatten it", path=path) from exc
    except UnsupportedValue as exc:
        raise _located(tree, path, exc) from None


def _decode(tree: Any) -> Any:
    kind = type(tree)
    if kind in _SCALARS or kind is int:
        return tree
    if kind is float:
        if not math.isfinite(tree):
            raise UnsupportedValue(f"{tree!r} is not a finite float", path="value")
        return tree
    if kind is list:
        return [_decode(item) for item in tree]
    if kind is dict:
        out = {}
        for key, item in tree.items():
            if type(key) is not str:
                raise UnsupportedValue(f"dict key {key!r} is not a str", path="value")
            out[key] = _decode(item)
        return _untag(out)
    raise UnsupportedValue(f"a {kind.__name__} is not a tagged plain-data tree", path="value")


def _located(tree: Any, path: str, first: UnsupportedValue, lifted: bool = False) -> UnsupportedValue:
    """The error `first` again, naming where in `tree` it is (`input['items'][2]`).

    Decoding runs without paths (it is on every hot path); only a failure walks the tree
    again, with them. With `lifted`, blob tags stand for blobs (checked elsewhere)."""
    try:
        _decode_at(tree, path, lifted)
    except UnsupportedValue as exc:
        return exc
    except RecursionError:
        return UnsupportedValue(f"{path}: nested too deeply to be plain data; flatten it", path=path)
    return first


def _decode_at(tree: Any, path: str, lifted: bool) -> Any:
    """`_decode`, slowly, naming the path of the first thing that is not a valid tree."""
    kind = type(tree)
    if kind in _SCALARS or kind is int:
        return tree
    if kind is float:
        if not math.isfinite(tree):
            raise UnsupportedValue(f"{path}: {tree!r} is not a finite float; send only finite numbers",
                                   path=path)
        return tree
    if kind is list:
        return [_decode_at(item, f"{path}[{i}]", lifted) for i, item in enumerate(tree)]
    if kind is dict:
        out = {}
        for key, item in tree.items():
            if type(key) is not str:
                raise UnsupportedValue(f"{path}: dict key {key!r} is not a str", path=path)
            out[key] = _decode_at(item, f"{path}[{key!r}]", lifted)
        if lifted and len(out) == 1 and next(iter(out)) in _BLOB_TAGS:
            return None
        return _untag(out, path)
    raise UnsupportedValue(f"{path}: a {kind.__name__} is not a tagged plain-data tree", path=path)


def approx_size(value: Any, limit: int) -> int:
    """About how many bytes `value` takes as text, counting no further than `limit`."""
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bytes:
            total += len(item) + 2
        elif kind is list or kind is tuple:
            total += 2 + len(item)
            stack.extend(item)
        elif kind is dict:
            total += 2 + len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif kind is Fail:
            total += 10
            stack.append(item.reason)
        else:
            total += 8
    return total


def check(value: Any, path: str = "value") -> Any:
    """Validate `value` and return it normalised exactly as the wire would deliver it."""
    return decode(encode(value, path), path)


def _no_constants(name: str) -> Any:
    raise UnsupportedValue(f"{name} is not a finite float; send only finite numbers", path="value")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise UnsupportedValue(f"{text} does not fit a finite float; send a smaller number", path="value")
    return number


def dumps(value: Any, path: str = "value") -> str:
    """Encode plain data as tagged JSON text."""
    return _ENCODER.encode(encode(value, path))


def dump_tree(tree: Any) -> str:
    """Compact ASCII JSON text of an already-encoded tree (or any JSON-ready data), as stored."""
    return _TREE_ENCODER.encode(tree)


def loads(text: str | bytes, path: str = "value") -> Any:
    """Decode tagged JSON text; malformed text raises `UnsupportedValue` naming its path below
    `path` (`input['items'][2]`)."""
    return _decode_text(_DECODER, text, path)


def _decode_text(decoder: json.JSONDecoder, text: str | bytes, path: str, lifted: bool = False) -> Any:
    """`decoder.decode(text)` (bytes decoded as json.loads does); malformed text raises
    `UnsupportedValue`, naming the path of a bad value."""
    try:
        if not isinstance(text, str):
            text = text.decode(json.detect_encoding(text), "surrogatepass")
        return decoder.decode(text)
    except UnsupportedValue as exc:
        raise _located(_plain_json(text, exc), path, exc, lifted) from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise UnsupportedValue(f"{path} is not valid tagged JSON: {exc}", path=path) from exc


def _plain_json(text: Any, first: UnsupportedValue) -> Any:
    """`text` parsed as plain JSON, non-finite numbers kept, to find where `first` came from."""
    try:
        return json.loads(text, parse_constant=float)
    except (ValueError, TypeError, RecursionError):
        raise first from None


def loads_lifted(text: str | bytes, blobs: list[bytes], path: str = "value") -> Any:
    """Decode text made by `dumps_lifting`, putting `blobs` back in place of their
    ``{"$text": i}`` / ``{"$blob": i}`` tags. Each blob must be named exactly once, in order
    (as `dumps_lifting` writes them), and a text blob must be UTF-8; anything else raises
    `UnsupportedValue`, so a small message can never decode into many copies of a blob."""
    if not blobs:
        return loads(text, path)
    named = 0

    def untag(obj: dict) -> Any:
        nonlocal named
        if len(obj) == 1:
            tag, index = next(iter(obj.items()))
            if tag in _BLOB_TAGS:
                if type(index) is not int or index != named or named >= len(blobs):
                    raise UnsupportedValue(f"{path}: {tag} names blob {index!r} where blob {named} of "
                                           f"{len(blobs)} was due; each blob is named once, in order", path=path)
                named += 1
                return _blob_value(tag, blobs, index)
        return _untag(obj)

    decoder = json.JSONDecoder(object_hook=untag, parse_constant=_no_constants, parse_float=_finite_float)
    value = _decode_text(decoder, text, path, lifted=True)
    if named != len(blobs):
        raise UnsupportedValue(f"{path}: {len(blobs)} blobs came with the value but it names {named}", path=path)
    return value


#: Tags that stand for a lifted blob (only in a call's payload or answer, see `dumps_lifting`).
_BLOB_TAGS = ("$text", "$blob")


def _blob_value(tag: str, blobs: list[bytes], index: int) -> str | bytes:
    """Blob `index` as the value `tag` stands for: bytes, or text that must be UTF-8."""
    if tag == "$blob":
        return bytes(blobs[index])
    try:
        return bytes(blobs[index]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsupportedValue(f"text blob {index} is not UTF-8 ({exc})", path=f"blobs[{index}]") from exc


# Built once: json.dumps/json.loads with options build a new encoder/decoder on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_TREE_ENCODER = json.JSONEncoder(separators=(",", ":"))
_DECODER = json.JSONDecoder(object_hook=_untag, parse_constant=_no_constants, parse_float=_finite_float)
