"""The plain-data codec (`fedflow.values`): exact round trips, refusals that name the path,
and malformed tagged JSON refused with UnsupportedValue."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedflow import Fail, UnsupportedValue, fail, values
from fedflow.grpc.codec import pack, pack_call_value, unpack, unpack_call_value

try:
    from support import same
except ImportError:  # tests/ imported as a package
    from tests.support import same


def both_ways(value: Any) -> list[Any]:
    """The value after each of the codec's round trips: text and tree."""
    return [values.loads(values.dumps(value)), values.decode(values.encode(value)),
            values.decode(json.loads(json.dumps(values.encode(value)))), values.check(value)]


PLAIN = [
    None, True, False, 0, 1, -1, 2**64 + 1, -(2**70), 2**200, 1.5, -0.0, 0.0, 1e308, 5e-324,
    "", "héllo ✓", "\u0000nul", "\U0001f600", b"", b"\x00\xff", bytes(range(256)),
    [], {}, [None, [[]], {}], {"": "empty key", "a": {"b": [1, {"c": False}]}},
    fail("no"), fail(None), fail({"code": 2**64 + 1, "raw": b"\x01"}), fail(fail("inner")),
    {"$bytes": "x"}, {"$fail": 1}, {"$map": [["a", 1]]}, {"$": None}, {"$other": [b"\x00"]},
    {"$bytes": "x", "$fail": 1}, {"$a": {"$b": {"$c": b""}}}, [{"$fail": fail({"$bytes": b"!"})}],
]


@pytest.mark.parametrize("value", PLAIN, ids=repr)
def test_every_plain_value_round_trips_exactly(value: Any) -> None:
    # Given a plain value / When it goes through every codec path / Then it comes back identical
    for back in both_ways(value):
        assert same(back, value), back


@pytest.mark.parametrize("value", [True, False], ids=repr)
def test_bools_stay_bools_and_ints_stay_ints(value: bool) -> None:
    assert values.loads(values.dumps(value)) is value
    back = values.loads(values.dumps([int(value), value, float(value)]))
    assert [type(x) for x in back] == [int, bool, float]


def test_dollar_keys_in_user_data_are_never_read_back_as_tags() -> None:
    # Given user dicts that look exactly like the codec's own tags
    tricky = [{"$bytes": "x"}, {"$fail": 1}, {"$map": [["k", "v"]]}]
    for value in tricky:
        # When they round-trip / Then they are still plain dicts, not bytes, Fail or an unwrapped map
        back = values.loads(values.dumps(value))
        assert type(back) is dict and back == value


def test_tuples_arrive_as_lists() -> None:
    value = ("a", (1, (2,)), {"t": ()})
    for back in both_ways(value):
        assert same(back, ["a", [1, [2]], {"t": []}])


def test_fail_nests_and_keeps_its_reason_exactly() -> None:
    value = {"outcome": fail({"big": -(2**70), "raw": b"", "z": -0.0})}
    back = values.loads(values.dumps(value))
    assert same(back, value)
    assert isinstance(back["outcome"], Fail)


def test_dumps_is_json_text() -> None:
    text = values.dumps({"n": 2**64 + 1, "b": b"\x00"})
    assert isinstance(text, str)
    assert json.loads(text) == {"n": 2**64 + 1, "b": {"$bytes": "AA=="}}


def test_loads_accepts_bytes_text() -> None:
    assert values.loads(values.dumps([1, "x"]).encode()) == [1, "x"]


# -- refusals -------------------------------------------------------------------------------

class Thing:
    pass


@pytest.mark.parametrize(("bad", "path"), [
    ({"a": [1, 2, {3}]}, "input['a'][2]"),
    ({"a": [1, 2, float("nan")]}, "input['a'][2]"),
    ([float("inf")], "input[0]"),
    ([float("-inf")], "input[0]"),
    ({"x": {"y": Thing()}}, "input['x']['y']"),
    ({"x": {1: "int key"}}, "input['x'][1]"),
    ({"x": {True: "bool key"}}, "input['x'][True]"),
    ({"x": {None: 1}}, "input['x'][None]"),
    ({"x": {("t",): 1}}, "input['x'][('t',)]"),
    ([1, frozenset()], "input[1]"),
    ([bytearray(b"x")], "input[0]"),
    ({"f": fail({1, 2})}, "input['f'].reason"),
    (range(3), "input"),
    (Thing, "input"),
])
def test_non_plain_values_are_refused_naming_the_path(bad: Any, path: str) -> None:
    with pytest.raises(UnsupportedValue) as ei:
        values.encode(bad, "input")
    assert ei.value.path == path
    assert path in str(ei.value)
    with pytest.raises(UnsupportedValue):
        values.dumps(bad, "input")


class MyInt(int):
    pass


class MyStr(str):
    pass


class MyFloat(float):
    pass


@pytest.mark.parametrize("bad", [MyInt(3), MyStr("s"), MyFloat(1.0), {MyStr("k"): 1}], ids=repr)
def test_subclasses_of_plain_types_are_not_plain(bad: Any) -> None:
    # a subclass would not come back as itself, so it cannot round-trip exactly
    with pytest.raises(UnsupportedValue):
        values.encode(bad)


def test_refusal_message_says_what_is_allowed() -> None:
    with pytest.raises(UnsupportedValue) as ei:
        values.encode({"s": {1}}, "payload")
    text = str(ei.value)
    assert "set" in text and "use None, bool, int" in text


def test_unsupported_value_is_a_type_error_too() -> None:
    with pytest.raises(TypeError):
        values.encode(object())


# -- malformed tagged JSON -----------------------------------------------------------------

@pytest.mark.parametrize("text", [
    '{"$bytes": "not base64!"}',
    '{"$bytes": "abc"}',  # bad padding
    '{"$bytes": 12}',
    '{"$bytes": null}',
    '{"$map": 5}',
    '{"$map": [["only-key"]]}',
    '{"$map": [[1, "int key"]]}',
    '{"$map": [{"k": 1}]}',
    '[{"$map": [["a", 1, 2]]}]',
    'NaN', '[Infinity]', '{"a": -Infinity}',
    '', '{"a": ', 'nope', '[1,]',
], ids=repr)
def test_malformed_tagged_json_is_refused(text: str) -> None:
    with pytest.raises(UnsupportedValue):
        values.loads(text)


@pytest.mark.parametrize("tree", [
    {"$bytes": "not base64!"}, {"$bytes": 3}, {"$map": "x"}, {"$map": [["a"]]},
    [float("nan")], {"k": float("inf")}, (1, 2), {1: 2}, {"a": {1, 2}}, b"raw bytes are not a tree",
], ids=repr)
def test_decode_refuses_what_encode_never_makes(tree: Any) -> None:
    with pytest.raises(UnsupportedValue):
        values.decode(tree)


@pytest.mark.parametrize("text", ["1e400", "-1e400", '{"a": [1e999]}'])
def test_loads_refuses_floats_that_overflow_to_infinity(text: str) -> None:
    # JSON number literals too large for a double parse as inf in Python's json;
    # inf is not plain data, so the text boundary must refuse it like decode() does.
    with pytest.raises(UnsupportedValue):
        values.loads(text)


# -- property --------------------------------------------------------------------------------

keys = st.one_of(st.text(max_size=6), st.sampled_from(["$bytes", "$fail", "$map", "$", "$x"]))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63, max_value=2**130),
    st.floats(allow_nan=False, allow_infinity=False), st.text(), st.binary(max_size=16),
)
plain = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(keys, inner, max_size=4),
        inner.map(fail),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, database=None)
@given(plain)
def test_property_any_plain_value_round_trips_exactly(value: Any) -> None:
    for back in both_ways(value):
        assert same(back, value)


@settings(max_examples=100, deadline=None, database=None)
@given(plain)
def test_property_encoded_tree_is_pure_json(value: Any) -> None:
    tree = values.encode(value)
    assert json.loads(json.dumps(tree, allow_nan=False)) == tree


_LONG = st.text(min_size=1, max_size=40).map(lambda piece: piece * (5000 // len(piece) + 1))


@settings(max_examples=100)
@given(_LONG)
def test_texts_come_out_exactly_as_json_writes_them(text: str) -> None:
    assert values.dumps(text) == json.dumps(values.encode(text), ensure_ascii=False, separators=(",", ":"))
    assert values.dump_tree(text) == json.dumps(text, separators=(",", ":"))
    assert values.loads(values.dumps(text)) == values.check(text)


@pytest.mark.parametrize(("text", "joined"), [
    ("\ud83d\ude00", "\U0001f600"),
    ("a\ud800\udc00b" * 3, "a\U00010000b" * 3),
    ({"k\ud83d\ude00": ["\ud83d\ude00" + "x" * 5000]}, {"k\U0001f600": ["\U0001f600" + "x" * 5000]}),
])
def test_a_surrogate_pair_is_joined_into_its_character_on_every_path(text: Any, joined: Any) -> None:
    # json reads a pair's escapes back as one character: encode joins the pair first, so the
    # value a flow sees now is the value every replay and every peer sees.
    assert values.check(text) == joined
    assert both_ways(text) == [joined] * 4
    assert values.loads(values.dump_tree(values.encode(text))) == joined
    data, blobs = pack_call_value(text, "payload")
    assert unpack_call_value(data, blobs, "payload") == joined


@pytest.mark.parametrize("text", ["\udc80", "x\ud800", "\udfff\ud800", {"k\ud800": ["\udfff" + "a" * 5000]}])
def test_a_lone_surrogate_is_kept_and_reads_back_as_itself(text: Any) -> None:
    # A low surrogate before a high one is two lone surrogates, not a pair.
    assert both_ways(text) == [text] * 4
    assert values.loads(values.dump_tree(values.encode(text))) == text
    assert values.dump_tree(values.encode(text)).isascii(), "stored as an escape"


def test_circular_trees_fail_as_json_does() -> None:
    loop: dict = {"s": "x"}
    loop["self"] = loop
    with pytest.raises(ValueError, match="Circular reference"):
        values.dump_tree(loop)


@settings(max_examples=300, deadline=None, database=None)
@given(plain)
def test_property_lifted_values_round_trip_exactly(value: Any) -> None:
    text, blobs = values.dumps_lifting(value, min_size=2)  # small: hypothesis's values get lifted too
    assert same(values.loads_lifted(text, blobs), value)


def test_long_strs_and_bytes_are_lifted_out_of_the_text_and_short_ones_stay() -> None:
    value = {"body": "é" * 5000, "raw": b"\x00" * 5000, "short": "hi", "$k": [b"ab"]}
    text, blobs = values.dumps_lifting(value)
    assert blobs == ["é".encode() * 5000, b"\x00" * 5000]
    assert "é" not in text and len(text) < 120 and '"short":"hi"' in text
    assert values.loads_lifted(text, blobs) == value
    assert values.dumps_lifting({"x": 1}) == (values.dumps({"x": 1}), [])


@pytest.mark.parametrize("value", ["é" * 5000, b"\x00" * 5000, ["é" * 5000], {"b": b"\x00" * 5000}])
@pytest.mark.parametrize("as_bytes", [False, True])
def test_a_value_that_is_one_blob_or_holds_one_comes_back_exact(value: Any, as_bytes: bool) -> None:
    text, blobs = values.dumps_lifting(value)
    assert len(blobs) == 1
    back = values.loads_lifted(text.encode() if as_bytes else text, blobs)
    assert back == value and type(back) is type(value)


@pytest.mark.parametrize(("text", "blobs", "why"), [
    ('{"$text":1}', [b"a"], "names blob 1"),
    (b'{"$text":0}', [b"\xff"], "not UTF-8"),
    ('{"$blob":-1}', [b"a"], "names blob -1"),
    ('{"$blob":true}', [b"a"], "names blob True"),
    ('{"$text":0.0}', [b"a"], "names blob 0.0"),
    ('{"$text":0}', [b"\xff"], "not UTF-8"),
    ('{"$text":', [b"a"], "not valid tagged JSON"),
    ('[{"$text":0},{"$text":0}]', [b"a" * 10**6], "names blob 0 where blob 1"),  # one blob, many copies
    ('[{"$text":1},{"$text":0}]', [b"a", b"b"], "names blob 1 where blob 0"),
    ('1', [b"unnamed"], "1 blobs came with the value but it names 0"),
    ('{"$text":0}', [], "no blobs came"),
    ('{"x":{"$blob":0}}', [], "no blobs came"),
])
def test_a_blob_tag_naming_no_blob_or_a_text_blob_that_is_not_utf8_is_refused(
        text: str, blobs: list[bytes], why: str) -> None:
    with pytest.raises(UnsupportedValue, match=why):
        values.loads_lifted(text, blobs)


@pytest.mark.parametrize("value", ["\udc80" * 3, {"k\ud800": ["\udfff" + "a" * 5000]}])
def test_lone_surrogates_travel_escaped_and_come_back_exact(value: Any) -> None:
    data, blobs = pack_call_value(value, "payload")
    assert unpack_call_value(data, blobs, "payload") == value
    assert unpack(pack(value), "value") == value
