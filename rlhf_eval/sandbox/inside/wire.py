"""Messages between the test process and the candidate process: only plain data crosses.

A message is a frame: a 4-byte big-endian length, then a JSON object. A value inside it is a
JSON node: null, true, false and strings stand for themselves; anything else is [tag, payload]
(`i` int as hex, `f` float as float.hex, exact; `c` complex; `y` bytes as hex; `l` list, `t`
tuple, `S` set, `F` frozenset, `d` dict as [key, value] pairs). `decode` builds new builtin
objects and nothing else, so no object of the candidate (a forged `__eq__`, a str subclass)
ever reaches the tests; it bounds size, depth and item count, so a hostile answer cannot
exhaust the test process either.
"""

from __future__ import annotations

import builtins
import json
import os

MAX_FRAME = 8 << 20
"""Bytes of one message: a few MB of answer is far beyond what a HumanEval test compares."""
MAX_DEPTH = 64
MAX_ITEMS = 1_000_000
MAX_INT_DIGITS = 20_000
"""Hex digits of one int (80,000 bits)."""
MAX_TEXT = 1000
"""Characters of an exception message that cross."""
DESCRIBED = ("type", "name", "message")
"""The keys of an exception as data (describe)."""


class WireError(Exception):
    """A message or value outside the protocol: too large, malformed, or not plain data."""


class NotPlainData(WireError):
    """A value of a type that does not cross (only encode raises it). Every value `decode`
    returns encodes again, so only code that made its own objects meets this."""


def send(fd: int, message: dict) -> None:
    data = json.dumps(message, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    payload = data.encode("ascii")
    if len(payload) > MAX_FRAME:
        raise WireError(f"a message of {len(payload)} bytes, over the limit of {MAX_FRAME}")
    view = memoryview(len(payload).to_bytes(4, "big") + payload)
    while view:
        view = view[os.write(fd, view) :]


def receive(fd: int) -> dict:
    """The next message; EOFError when the other side has closed the channel."""
    size = int.from_bytes(_read_exactly(fd, 4), "big")
    if size > MAX_FRAME:
        raise WireError(f"a message of {size} bytes, over the limit of {MAX_FRAME}")
    try:
        message = json.loads(_read_exactly(fd, size))
    except (ValueError, RecursionError) as error:
        raise WireError(f"a malformed message ({type(error).__name__})") from None
    if type(message) is not dict:
        raise WireError("a message that is not a JSON object")
    return message


def _read_exactly(fd: int, size: int) -> bytes:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise EOFError("the other process closed the channel")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


class _Budget:
    def __init__(self) -> None:
        self.items = 0

    def spend(self, depth: int) -> None:
        self.items += 1
        if self.items > MAX_ITEMS:
            raise WireError(f"more than {MAX_ITEMS} items")
        if depth > MAX_DEPTH:
            raise WireError(f"nested deeper than {MAX_DEPTH}")


def encode(value: object) -> object:
    """A value as JSON nodes. Subclasses of the plain types (Counter, defaultdict, a named
    tuple, an IntEnum) cross as their builtin base; any other object raises WireError."""
    return _encode(value, 0, _Budget())


def _encode(value: object, depth: int, budget: _Budget) -> object:
    budget.spend(depth)
    if value is None or value is True or value is False:
        return value
    if isinstance(value, str):
        return str.__str__(value)  # an exact str, whatever the subclass overrides
    if isinstance(value, int):
        text = hex(int.__index__(value))
        if len(text) > MAX_INT_DIGITS + 3:
            raise WireError(f"an int of more than {MAX_INT_DIGITS} hex digits")
        return ["i", text]
    if isinstance(value, float):
        return ["f", float.hex(value)]
    if isinstance(value, complex):
        return ["c", [float.hex(value.real), float.hex(value.imag)]]
    if isinstance(value, (bytes, bytearray)):
        return ["y", bytes(value).hex()]
    if isinstance(value, dict):
        pairs = dict.items(value)
        return [
            "d",
            [[_encode(k, depth + 1, budget), _encode(v, depth + 1, budget)] for k, v in pairs],
        ]
    for kind, tag in ((list, "l"), (tuple, "t"), (set, "S"), (frozenset, "F")):
        if isinstance(value, kind):
            return [tag, [_encode(item, depth + 1, budget) for item in value]]
    raise NotPlainData(f"{type(value).__name__} is not plain data")


def decode(node: object) -> object:
    """New builtin objects from JSON nodes; WireError for anything outside the grammar."""
    return _decode(node, 0, _Budget())


def _decode(node: object, depth: int, budget: _Budget) -> object:
    budget.spend(depth)
    if node is None or node is True or node is False or type(node) is str:
        return node
    if type(node) is not list or len(node) != 2 or type(node[0]) is not str:
        raise WireError("a malformed value")
    tag, payload = node
    try:
        if tag == "i" and type(payload) is str and len(payload) <= MAX_INT_DIGITS + 3:
            return int(payload, 16)
        if tag == "f" and type(payload) is str and len(payload) <= 40:
            return float.fromhex(payload)
        if tag == "c" and type(payload) is list and len(payload) == 2:
            real, imag = (_decode(["f", part], depth + 1, budget) for part in payload)
            return complex(real, imag)
        if tag == "y" and type(payload) is str:
            return bytes.fromhex(payload)
        if tag == "d" and type(payload) is list:
            pairs = [p for p in payload if type(p) is list and len(p) == 2]
            if len(pairs) != len(payload):
                raise WireError("a malformed dict")
            return {_decode(k, depth + 1, budget): _decode(v, depth + 1, budget) for k, v in pairs}
        if tag in ("l", "t", "S", "F") and type(payload) is list:
            items = [_decode(item, depth + 1, budget) for item in payload]
            return {"l": list, "t": tuple, "S": set, "F": frozenset}[tag](items)
    except (ValueError, TypeError, OverflowError) as error:  # bad hex, unhashable keys
        raise WireError(f"a malformed value ({type(error).__name__})") from None
    raise WireError(f"a malformed value (tag {tag[:8]!r})")


def describe(error: BaseException) -> dict:
    """An exception as data: its nearest builtin class, its own class name, its message."""
    kind = next(
        (c.__name__ for c in type(error).__mro__ if getattr(builtins, c.__name__, None) is c),
        "Exception",
    )
    try:
        message = str(error)
    except BaseException:  # noqa: BLE001  (a candidate's __str__ may raise anything)
        message = ""
    return {"type": kind, "name": type(error).__name__[:100], "message": message[:MAX_TEXT]}
