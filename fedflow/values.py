"""The plain-data codec used at every boundary (store, wire, export, CLI).

Plain data is None, bool, int (any size), finite float, str, bytes, list
(tuples become lists), dict with str keys, and `Fail`, nested freely.
Anything else raises `UnsupportedValue` naming its path.

The text form is JSON with four tagged one-key objects, so it is exact:
``{"$bytes": "<base64>"}``, ``{"$fail": <reason>}``, ``{"$map": [[k, v], ...]}``
for a one-key dict whose key starts with "$" (so user data never reads as a tag),
and ``{"$int": "<hex>"}`` for an int too long for Python's decimal conversion.
A peer call's payload and answer may also hold ``{"$text": i}`` / ``{"$blob": i}``,
naming a long str or bytes sent raw beside the text (`dumps_lifting`, `loads_lifted`);
anywhere else those two tags are refused.

>>> loads(dumps({"n": 2**64 + 1, "raw": b"\\x00", "no": fail("x")}))
{'n': 18446744073709551617, 'raw': b'\\x00', 'no': Fail('x')}
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from typing import Any

from .errors import UnsupportedValue
from .railway import Fail, fail

__all__ = ["check", "decode", "dump_tree", "dumps", "dumps_lifting", "encode", "loads", "loads_lifted"]

_SCALARS = (str, type(None), bool)
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
            out[key] = _encode(item, f"{path}[{key!r}]", lift)
        if len(out) == 1 and next(iter(out)).startswith("$"):
            return {"$map": [[k, v] for k, v in out.items()]}
        return out
    if kind is bytes:
        lifted = None if lift is None else lift(value)
        return lifted or {"$bytes": base64.b64encode(value).decode("ascii")}
    if kind is Fail:
        return {"$fail": _encode(value.reason, f"{path}.reason", lift)}
    raise _refuse(value, path)


def _untag(obj: dict) -> Any:
    if len(obj) != 1:
        return obj
    tag, inner = next(iter(obj.items()))
    if tag == "$bytes":
        if type(inner) is not str:
            raise UnsupportedValue("$bytes must hold a base64 string", path="$bytes")
        try:
            return base64.b64decode(inner, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise UnsupportedValue(f"$bytes holds invalid base64 ({exc}); use standard base64 for bytes",
                                   path="$bytes") from exc
    if tag == "$fail":
        return fail(inner)
    if tag == "$int":
        if type(inner) is not str:
            raise UnsupportedValue("$int must hold a hex string", path="$int")
        try:
            return int(inner, 16)
        except ValueError as exc:
            raise UnsupportedValue(f"$int holds invalid hex ({exc}); use hex() of the int", path="$int") from exc
    if tag in _BLOB_TAGS:
        raise UnsupportedValue(f"{tag} names a blob, but no blobs came with this value", path=tag)
    if tag == "$map":
        if type(inner) is not list or not all(
                type(p) is list and len(p) == 2 and type(p[0]) is str for p in inner):
            raise UnsupportedValue("$map must hold [[str, value], ...]", path="$map")
        return {k: v for k, v in inner}
    return obj


def decode(tree: Any) -> Any:
    """Turn a tagged JSON tree (as made by `encode`) back into plain data."""
    try:
        return _decode(tree)
    except RecursionError as exc:
        raise UnsupportedValue("nested too deeply to be plain data; flatten it", path="value") from exc


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
    return decode(encode(value, path))


def _no_constants(name: str) -> Any:
    raise UnsupportedValue(f"{name} is not a finite float; send only finite numbers", path="value")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise UnsupportedValue(f"{text} does not fit a finite float; send a smaller number", path="value")
    return number


def dumps(value: Any, path: str = "value") -> str:
    """Encode plain data as tagged JSON text."""
    return _to_json(encode(value, path), _ENCODER, False, _SPLICE_DEPTH)


def dump_tree(tree: Any) -> str:
    """Compact JSON text of an already-encoded tree (or any JSON-ready data), as stored."""
    return _to_json(tree, _TREE_ENCODER, True, _SPLICE_DEPTH)


def _to_json(tree: Any, encoder: json.JSONEncoder, ascii_only: bool, depth: int) -> str:
    """`encoder.encode(tree)`, the same text, taking the no-escaping path for a long text at the
    top or held by a dict within `depth` levels (a log entry holding a journaled text)."""
    if type(tree) is str and len(tree) >= _LONG_TEXT:
        return _remembered_json(tree, encoder, ascii_only)
    if depth > 0 and type(tree) is dict and _holds_long_text(tree, depth):
        return "{" + ",".join(f"{encoder.encode(key)}:{_to_json(item, encoder, ascii_only, depth - 1)}"
                              for key, item in tree.items()) + "}"
    return encoder.encode(tree)


def _holds_long_text(tree: dict, depth: int) -> bool:
    """Whether `tree` (str keys only: json would convert others) or a dict it holds, `depth` levels
    down, holds a long text as a value. Bounded, so a large tree costs a glance, not a walk."""
    if len(tree) > _SPLICE_KEYS or not all(type(key) is str for key in tree):
        return False
    return any((type(item) is str and len(item) >= _LONG_TEXT)
               or (depth > 1 and type(item) is dict and _holds_long_text(item, depth - 1))
               for item in tree.values())


def _remembered_json(text: str, encoder: json.JSONEncoder, ascii_only: bool) -> str:
    """A long `text` as JSON, remembering the last one written: a flow writes the same text
    more than once (the answer it journals is often the result it returns) and reads back the
    input it has just written (see `loads`). One text per process, up to _REMEMBER_MAX."""
    global _last_long_text
    last = _last_long_text
    if last is not None and last[1] is ascii_only and last[0] == text:  # `is` first, then memcmp
        return last[2]
    written = _long_text_json(text, ascii_only)
    reads_back = True
    if written is None:
        written = encoder.encode(text)
        # json reads an escaped surrogate pair back as one character, so a text holding
        # surrogates would not read back as itself (astral characters are escaped the same way).
        reads_back = "\\ud" not in written
    if len(text) <= _REMEMBER_MAX:
        _last_long_text = (text, ascii_only, written, reads_back)
    return written


def _long_text_json(text: str, ascii_only: bool) -> str | None:
    """`text` as a JSON string, byte for byte what json writes, escaped with bytes.replace (one
    memchr-speed pass per kind of character present) instead of json's one character at a
    time (~0.5 GB/s); None when json must do it (non-ASCII under `ascii_only`, a lone surrogate)."""
    if ascii_only and not text.isascii():
        return None
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: json's escaper handles it
        return None
    # UTF-8 never uses these bytes inside a multi-byte character, so bytes are safe to replace.
    present = data.translate(None, _PLAIN_ASCII if ascii_only else _PLAIN_BYTES)
    if not present:
        return f'"{text}"'
    for code, char, escape in _ESCAPE_ORDER:  # `in`: memchr (set(present) took 36 µs for prose)
        if code in present:
            data = data.replace(char, escape)
    return f'"{data.decode("utf-8")}"'


def loads(text: str | bytes) -> Any:
    """Decode tagged JSON text; malformed text raises `UnsupportedValue`."""
    last = _last_long_text
    if last is not None and text is last[2] and last[3]:  # the JSON just written for a long text
        return last[0]
    return _decode_text(_DECODER, text)


def _decode_text(decoder: json.JSONDecoder, text: str | bytes) -> Any:
    """`decoder.decode(text)` (bytes decoded as json.loads does); malformed text raises
    `UnsupportedValue`."""
    try:
        if not isinstance(text, str):
            text = text.decode(json.detect_encoding(text), "surrogatepass")
        return decoder.decode(text)
    except UnsupportedValue:
        raise
    except (ValueError, TypeError, RecursionError) as exc:
        raise UnsupportedValue(f"not valid tagged JSON: {exc}", path="value") from exc


def loads_lifted(text: str | bytes, blobs: list[bytes]) -> Any:
    """Decode text made by `dumps_lifting`, putting `blobs` back in place of their
    ``{"$text": i}`` / ``{"$blob": i}`` tags. Each blob must be named exactly once, in order
    (as `dumps_lifting` writes them), and a text blob must be UTF-8; anything else raises
    `UnsupportedValue`, so a small message can never decode into many copies of a blob."""
    if not blobs:
        return loads(text)
    if len(blobs) == 1 and type(text) in (str, bytes) and text in _LONE_BLOB:  # one long str or bytes
        return _blob_value(_LONE_BLOB[text], blobs, 0)
    named = 0

    def untag(obj: dict) -> Any:
        nonlocal named
        if len(obj) == 1:
            tag, index = next(iter(obj.items()))
            if tag in _BLOB_TAGS:
                if type(index) is not int or index != named or named >= len(blobs):
                    raise UnsupportedValue(f"{tag} names blob {index!r} where blob {named} of {len(blobs)} "
                                           f"was due; each blob is named once, in order", path=tag)
                named += 1
                return _blob_value(tag, blobs, index)
        return _untag(obj)

    decoder = json.JSONDecoder(object_hook=untag, parse_constant=_no_constants, parse_float=_finite_float)
    value = _decode_text(decoder, text)
    if named != len(blobs):
        raise UnsupportedValue(f"{len(blobs)} blobs came with the value but it names {named}", path="value")
    return value


#: Tags that stand for a lifted blob (only in a call's payload or answer, see `dumps_lifting`).
_BLOB_TAGS = ("$text", "$blob")
#: The whole text of a value that is one lifted blob (as str or bytes) -> its tag.
_LONE_BLOB = {form: tag for tag in _BLOB_TAGS for form in (f'{{"{tag}":0}}', f'{{"{tag}":0}}'.encode())}


def _blob_value(tag: str, blobs: list[bytes], index: int) -> str | bytes:
    """Blob `index` as the value `tag` stands for: bytes, or text that must be UTF-8."""
    if tag == "$blob":
        return bytes(blobs[index])
    try:
        return bytes(blobs[index]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsupportedValue(f"text blob {index} is not UTF-8 ({exc})", path=tag) from exc


#: Strings at least this long are checked for the no-escaping fast path (shorter: json is quick).
_LONG_TEXT = 4096
#: The longest text (in characters) `_remembered_json` keeps, with its JSON: a bound on the
#: memory it holds (a few MiB at most: a character takes up to 4 bytes, its escape up to 12).
_REMEMBER_MAX = 1 << 20
#: (text, ascii_only, its JSON, whether `loads` of that JSON gives the text back) of the last
#: long text written, or None.
_last_long_text: tuple[str, bool, str, bool] | None = None
_SPLICE_DEPTH = 2  # dict levels searched for long texts: an entry, and the dict it journals
_SPLICE_KEYS = 32  # a dict with more keys is encoded whole, unsearched
_ESCAPED_BYTES = bytes(range(0x20)) + b'"\\'
_ESCAPED_ASCII = _ESCAPED_BYTES + b"\x7f"  # json's ASCII-only mode escapes DEL too
_PLAIN_BYTES = bytes(set(range(256)) - set(_ESCAPED_BYTES))  # deleting these leaves what needs escaping
_PLAIN_ASCII = bytes(set(range(256)) - set(_ESCAPED_ASCII))
_SHORT_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
#: byte -> its JSON escape, as json writes it (short forms, else \u00xx in lowercase hex).
_JSON_ESCAPES = {code: (_SHORT_ESCAPES.get(chr(code)) or f"\\u{code:04x}").encode() for code in _ESCAPED_ASCII}
_BACKSLASH = ord("\\")
#: (byte, as bytes, its escape), the backslash first: the other escapes add backslashes.
_ESCAPE_ORDER = sorted(((code, bytes((code,)), escape) for code, escape in _JSON_ESCAPES.items()),
                       key=lambda item: item[0] != _BACKSLASH)
# Built once: json.dumps/json.loads with options build a new encoder/decoder on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_TREE_ENCODER = json.JSONEncoder(separators=(",", ":"))
_DECODER = json.JSONDecoder(object_hook=_untag, parse_constant=_no_constants, parse_float=_finite_float)
