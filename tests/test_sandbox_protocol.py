"""The frame and value codec: round trips, and refusal of everything outside the whitelist."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from grader.sandbox.protocol import (
    DTYPES,
    FrameDecoder,
    ProtocolError,
    TooLarge,
    Unconvertible,
    decode_value,
    encode_frame,
    encode_value,
)

DTYPE_NAMES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
               "float16", "float32", "float64", ">f8", ">i4"]


def roundtrip(value: object, max_bytes: int = 1 << 30) -> object:
    blobs: list[bytes] = []
    frame = encode_frame({"v": encode_value(value, blobs)}, blobs)
    dec = FrameDecoder(max_bytes)
    for i in range(0, len(frame), 7):  # fed in small pieces, as a socket would
        dec.feed(frame[i:i + 7])
    msg, got = dec.next()
    assert dec.next() is None and dec.pending() == 0
    return decode_value(msg["v"], got)


def same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.shape == b.shape
                and a.dtype.newbyteorder("<") == b.dtype and a.tobytes() == b.astype(a.dtype).tobytes())
    if isinstance(a, float):
        return type(b) is float and (a == b or (math.isnan(a) and math.isnan(b)))
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return type(b) is dict and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


arrays = st.sampled_from(DTYPE_NAMES).flatmap(
    lambda d: hnp.arrays(np.dtype(d), hnp.array_shapes(min_dims=0, max_dims=4, min_side=0,
                                                         max_side=5)))
leaves = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=20)
          | st.floats(allow_nan=True, allow_infinity=True) | arrays)
values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4)
                      | st.tuples(inner, inner)
                      | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(values)
def test_roundtrip(value: object) -> None:
    assert same(value, roundtrip(value))


@pytest.mark.parametrize("x", [math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324])
def test_special_floats(x: float) -> None:
    got = roundtrip(x)
    assert type(got) is float and (math.isnan(got) if math.isnan(x) else got == x)
    assert math.copysign(1, got) == math.copysign(1, x)


def test_arrays_are_fresh_writable_copies_and_little_endian() -> None:
    a = np.arange(6, dtype=">i4").reshape(2, 3)[:, ::2]
    got = roundtrip(a)
    assert got.dtype == np.dtype("<i4") and got.flags.writeable and got.flags.owndata
    np.testing.assert_array_equal(got, a)
    assert roundtrip(np.float32(1.5)).shape == ()
    assert roundtrip(Unconvertible("dict", "{}")) == Unconvertible("dict", "{}")


@pytest.mark.parametrize("bad", [np.array([1 + 2j]), np.array(["a"]), np.array([None], dtype=object),
                                 np.zeros(2, dtype=np.longdouble), np.zeros(1, dtype="M8[s]"),
                                 np.zeros(2, dtype=[("a", "<i4")]), {1: 2}, object(), b"bytes"])
def test_encode_refuses(bad: object) -> None:
    with pytest.raises(ProtocolError):
        encode_value(bad, [])


def frame_with(value_tree: object, blobs: list[bytes]) -> tuple[dict, list[bytes]]:
    dec = FrameDecoder(1 << 20)
    dec.feed(encode_frame({"v": value_tree}, blobs))
    return dec.next()


@pytest.mark.parametrize("tree,blobs", [
    ({"$a": ["|O", [1], 0]}, [b"\0" * 8]),                    # object dtype
    ({"$a": ["<c16", [1], 0]}, [b"\0" * 16]),                 # complex
    ({"$a": ["<U1", [1], 0]}, [b"\0" * 4]),                   # strings
    ({"$a": [">f8", [1], 0]}, [b"\0" * 8]),                   # big-endian spelling
    ({"$a": ["<f8", [2], 0]}, [b"\0" * 8]),                   # shape/length mismatch
    ({"$a": ["<f8", [-1], 0]}, [b"\0" * 8]),                  # negative dim
    ({"$a": ["<f8", [1.0], 0]}, [b"\0" * 8]),                 # float dim
    ({"$a": ["<f8", [1] * 9, 0]}, [b"\0" * 8]),               # too many dims
    ({"$a": ["<f8", [1], 1]}, [b"\0" * 8]),                   # missing blob
    ({"$f": "1e5"}, []), ({"$x": 1}, []), ({"a": 1, "b": 2}, []), ({"$d": [[1, 2]]}, []),
])
def test_decode_refuses(tree: object, blobs: list[bytes]) -> None:
    msg, got = frame_with(tree, blobs)
    with pytest.raises(ProtocolError):
        decode_value(msg["v"], got)


def test_oversize_is_refused_before_buffering() -> None:
    big = encode_frame({"x": 1}, [b"\0" * 5000])
    dec = FrameDecoder(4096)
    with pytest.raises(TooLarge):
        dec.feed(big[:200])  # the header alone announces too much
    dec = FrameDecoder(1 << 20, max_header=16)
    with pytest.raises(TooLarge):
        dec.feed(struct.pack(">I", 1000))


def test_truncated_frame_is_never_complete() -> None:
    frame = encode_frame({"x": 1}, [b"abc"])
    dec = FrameDecoder(1 << 20)
    dec.feed(frame[:-1])
    assert dec.next() is None
    dec.feed(frame[-1:])
    assert dec.next() == ({"x": 1}, [b"abc"])


@pytest.mark.parametrize("header", [b"\xff\xfe", b"not json", b"[1,2]", b'{"msg": 1}',
                                    b'{"msg": {}, "blobs": [-1]}', b'{"msg": {}, "blobs": "x"}',
                                    b"[" * 100000, b'{"msg": {}, "blobs": [NaN]}'])
def test_garbage_header(header: bytes) -> None:
    dec = FrameDecoder(1 << 20)
    with pytest.raises(ProtocolError):
        dec.feed(struct.pack(">I", len(header)) + header)


def test_whitelist_is_what_the_docs_say() -> None:
    assert {np.dtype(d).newbyteorder("<").str for d in DTYPE_NAMES} == set(DTYPES)
    assert json.loads(encode_frame({"a": 1})[4:])["blobs"] == []
