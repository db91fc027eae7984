"""The plain-data channel between the candidate and the test process: exact round trips, new
builtin objects only, and limits on everything a hostile answer could inflate."""

from __future__ import annotations

import collections
import enum
import json
import math
import os
import threading

import pytest

from rlhf_eval.sandbox.inside import wire


def round_trip(value):
    # Through JSON text, as it crosses the pipe.
    return wire.decode(json.loads(json.dumps(wire.encode(value))))


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -(10**400),
        2**70,
        0.1,
        -0.0,
        1e308,
        5e-324,
        math.inf,
        -math.inf,
        3 + 4.5j,
        "",
        "naïve \udcff \n",
        b"\x00\xff",
        [],
        [1, [2, [3]]],
        (1, "a", (None,)),
        {1: "a", "b": [2], (3, 4): {5}},
        {1, 2, 3},
        frozenset({"a", (1, 2)}),
        {frozenset({1}): ()},
    ],
)
def test_plain_data_crosses_exactly(value):
    back = round_trip(value)
    assert back == value and type(back) is type(value)
    if isinstance(value, float):
        assert math.copysign(1, back) == math.copysign(1, value)


def test_nan_crosses():
    assert math.isnan(round_trip(math.nan))


def test_subclasses_cross_as_their_builtin_base():
    class Loud(str):
        def __eq__(self, other):
            return True

        __hash__ = str.__hash__

    class Colour(enum.IntEnum):
        RED = 1

    point = collections.namedtuple("Point", "x y")(1, 2)
    counts = collections.Counter("abca")
    for value, expected in [
        (Loud("x"), "x"),
        (Colour.RED, 1),
        (point, (1, 2)),
        (counts, {"a": 2, "b": 1, "c": 1}),
        (collections.defaultdict(list, {"k": [1]}), {"k": [1]}),
        (bytearray(b"ab"), b"ab"),
    ]:
        back = round_trip(value)
        assert back == expected and type(back) is type(expected)


def test_objects_that_are_not_plain_data_do_not_cross():
    class AlwaysEqual:
        def __eq__(self, other):
            return True

    for value in [AlwaysEqual(), (x for x in []), map(str, []), object(), len, [1, AlwaysEqual()]]:
        with pytest.raises(wire.NotPlainData):
            wire.encode(value)


def test_limits_on_depth_items_and_int_size():
    deep: list = []
    for _ in range(wire.MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(wire.WireError, match="nested deeper"):
        wire.encode(deep)
    node: object = ["l", []]
    for _ in range(wire.MAX_DEPTH + 1):
        node = ["l", [node]]
    with pytest.raises(wire.WireError, match="nested deeper"):
        wire.decode(node)
    with pytest.raises(wire.WireError, match="hex digits"):
        wire.encode(1 << (4 * wire.MAX_INT_DIGITS + 8))
    with pytest.raises(wire.WireError):
        wire.decode(["i", "0x" + "f" * (wire.MAX_INT_DIGITS + 2)])
    looped: list = []
    looped.append(looped)
    with pytest.raises(wire.WireError):
        wire.encode(looped)


@pytest.mark.parametrize(
    "node",
    [
        1,  # a bare JSON number is not in the grammar
        1.5,
        {"x": 1},
        ["i"],
        ["i", 5],
        ["f", "0x1p+1" * 10],
        ["q", []],
        ["d", [[1]]],
        ["d", [[["l", []], 1]]],  # an unhashable key
        ["S", [["l", []]]],
        ["y", "zz"],
        ["i", "seven"],
    ],
)
def test_malformed_values_are_refused(node):
    with pytest.raises(wire.WireError):
        wire.decode(node)


def test_frames_round_trip_and_refuse_what_breaks_the_protocol():
    read, write = os.pipe()
    try:
        wire.send(write, {"value": wire.encode([1.5, "x"])})
        assert wire.decode(wire.receive(read)["value"]) == [1.5, "x"]
        os.write(write, (wire.MAX_FRAME + 1).to_bytes(4, "big"))
        with pytest.raises(wire.WireError, match="over the limit"):
            wire.receive(read)
        os.write(write, (3).to_bytes(4, "big") + b"[1]")
        with pytest.raises(wire.WireError, match="not a JSON object"):
            wire.receive(read)
        os.write(write, (8).to_bytes(4, "big") + b"{broken}")
        with pytest.raises(wire.WireError, match="malformed"):
            wire.receive(read)
        nested = b"[" * 100_000 + b"]" * 100_000
        os.write(write, len(nested).to_bytes(4, "big"))
        # Written from a thread: the frame is larger than a pipe's buffer.
        writer = threading.Thread(target=os.write, args=(write, nested))
        writer.start()
        with pytest.raises(wire.WireError, match="malformed"):
            wire.receive(read)
        writer.join()
        os.write(write, b"\x00\x00")
    finally:
        os.close(write)
    try:
        with pytest.raises(EOFError):
            wire.receive(read)
    finally:
        os.close(read)


def test_exceptions_cross_as_their_nearest_builtin_class():
    class Mine(KeyError):
        pass

    class Loud(Exception):
        def __str__(self):
            raise RuntimeError("no")

    assert wire.describe(Mine("k")) == {"type": "KeyError", "name": "Mine", "message": "'k'"}
    assert wire.describe(Loud()) == {"type": "Exception", "name": "Loud", "message": ""}
    assert len(wire.describe(ValueError("x" * 10**6))["message"]) == wire.MAX_TEXT
