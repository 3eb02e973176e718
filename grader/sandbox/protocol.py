"""Framing and value codec shared by the grader and the sandboxed worker.

Why a codec of our own: everything that crosses the sandbox boundary is data written by (or under
the control of) student code, so the parent must be able to decode it without running any of it.
That rules out pickle, marshal, ``eval`` and ``np.load(allow_pickle=True)``. A frame is::

    u32 big-endian header length | JSON header | raw blobs

The JSON header is ``{"msg": {...}, "blobs": [len, ...]}``; arrays travel as raw little-endian
bytes in the blobs and are referenced from the message by index. Every length is checked against a
cap *before* anything is buffered, so a hostile peer can cost us at most ``max_bytes`` of memory.

This module is copied into the sandbox and imported there as the top-level module ``protocol``;
it therefore imports only the standard library and numpy.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

MAX_HEADER = 4 * 1024 * 1024
MAX_DIMS = 8
MAX_ELEMENTS = 1 << 40  # no real array has more; numpy cannot even describe some larger shapes
MAX_DEPTH = 64
_LEN = struct.Struct(">I")

#: The only dtypes that may cross the boundary, in the (little-endian) ``dtype.str`` spelling.
DTYPES = frozenset(
    {"|b1", "|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f2", "<f4", "<f8"}
)


class ProtocolError(Exception):
    """A frame or value broke the protocol (bad header, bad dtype, over a size cap, truncated)."""


class TooLarge(ProtocolError):
    """A frame announced more bytes than the receiver accepts."""


@dataclass(frozen=True)
class Unconvertible:
    """A value returned by student code that is not numeric data (a dict, a generator, ...)."""

    type_name: str
    repr: str


def dtype_allowed(dtype: np.dtype) -> bool:
    """True when arrays of ``dtype`` may be sent (after conversion to little-endian)."""
    if dtype.fields is not None or dtype.subdtype is not None:
        return False
    return dtype.newbyteorder("<").str in DTYPES if dtype.kind in "biuf" else False


# --------------------------------------------------------------------------------------- values
def encode_value(value: Any, blobs: list[bytes], _depth: int = 0) -> Any:
    """Turn ``value`` into a JSON-able tree, appending array data to ``blobs``.

    JSON objects in the tree are always single-key tags (``$f`` float, ``$t`` tuple, ``$d`` dict,
    ``$a`` array, ``$u`` unconvertible), so plain lists/str/int/bool/None stay readable.
    """
    if _depth > MAX_DEPTH:
        raise ProtocolError("value nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$f": repr(value)}
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if isinstance(value, np.ndarray):
        if not dtype_allowed(value.dtype):
            raise ProtocolError(f"dtype {value.dtype} cannot be sent")
        if value.ndim > MAX_DIMS:
            raise ProtocolError(f"array has {value.ndim} dimensions (at most {MAX_DIMS})")
        little = value.astype(value.dtype.newbyteorder("<"), copy=False)
        blobs.append(little.tobytes(order="C"))  # np.ascontiguousarray would make 0-d 1-d
        return {"$a": [little.dtype.str, list(little.shape), len(blobs) - 1]}
    if isinstance(value, Unconvertible):
        return {"$u": [str(value.type_name), str(value.repr)]}
    if isinstance(value, tuple):
        return {"$t": [encode_value(v, blobs, _depth + 1) for v in value]}
    if isinstance(value, list):
        return [encode_value(v, blobs, _depth + 1) for v in value]
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            if not isinstance(k, str):
                raise ProtocolError("dict keys must be str")
            items.append([k, encode_value(v, blobs, _depth + 1)])
        return {"$d": items}
    raise ProtocolError(f"cannot encode a value of type {type(value).__name__}")


def decode_value(tree: Any, blobs: list[bytes], _depth: int = 0) -> Any:
    """Inverse of :func:`encode_value`; validates every array and returns fresh copies."""
    if _depth > MAX_DEPTH:
        raise ProtocolError("value nested too deeply")
    if tree is None or isinstance(tree, (bool, str, int)):
        return tree
    if isinstance(tree, float):
        return tree
    if isinstance(tree, list):
        return [decode_value(v, blobs, _depth + 1) for v in tree]
    if not isinstance(tree, dict) or len(tree) != 1:
        raise ProtocolError("malformed value")
    (tag, body), = tree.items()
    if tag == "$f":
        if body not in ("nan", "inf", "-inf"):
            raise ProtocolError("malformed float")
        return float(body)
    if tag == "$t" and isinstance(body, list):
        return tuple(decode_value(v, blobs, _depth + 1) for v in body)
    if tag == "$d" and isinstance(body, list):
        out = {}
        for item in body:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
                raise ProtocolError("malformed dict item")
            out[item[0]] = decode_value(item[1], blobs, _depth + 1)
        return out
    if tag == "$u" and isinstance(body, list) and len(body) == 2:
        if not all(isinstance(s, str) for s in body):
            raise ProtocolError("malformed unconvertible")
        return Unconvertible(body[0][:200], body[1][:400])
    if tag == "$a" and isinstance(body, list) and len(body) == 3:
        return _decode_array(body, blobs)
    raise ProtocolError(f"unknown value tag {str(tag)[:20]!r}")


def _decode_array(body: list, blobs: list[bytes]) -> np.ndarray:
    dtype_str, shape, index = body
    if not isinstance(dtype_str, str) or dtype_str not in DTYPES:
        raise ProtocolError(f"dtype {str(dtype_str)[:20]!r} is not allowed")
    if not isinstance(shape, list) or len(shape) > MAX_DIMS:
        raise ProtocolError("malformed array shape")
    if not all(type(n) is int and 0 <= n <= MAX_ELEMENTS for n in shape) \
            or math.prod(max(n, 1) for n in shape) > MAX_ELEMENTS:
        raise ProtocolError("malformed array shape")
    if type(index) is not int or not 0 <= index < len(blobs):
        raise ProtocolError("array refers to a missing blob")
    dtype = np.dtype(dtype_str)
    data = blobs[index]
    if math.prod(shape) * dtype.itemsize != len(data):
        raise ProtocolError("array shape does not match its data length")
    try:
        return np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    except ValueError:
        raise ProtocolError("impossible array shape") from None


# --------------------------------------------------------------------------------------- frames
def encode_frame(msg: dict[str, Any], blobs: Sequence[bytes] = ()) -> bytes:
    """One frame: the message (plain JSON, already value-encoded where needed) plus blobs."""
    header = json.dumps({"msg": msg, "blobs": [len(b) for b in blobs]}, allow_nan=False,
                        separators=(",", ":")).encode("utf-8")
    if len(header) > MAX_HEADER:
        raise TooLarge(f"header of {len(header)} bytes is over {MAX_HEADER}")
    return b"".join([_LEN.pack(len(header)), header, *blobs])


class FrameDecoder:
    """Incremental frame parser: ``feed`` bytes, ``next`` returns a complete frame or None.

    Caps are enforced as soon as the lengths are known, before the data is buffered.
    ``text_filter(raw_header, msg)``, when given, may replace each message as it is parsed (the
    parent uses it to normalise untrusted text where it enters).
    """

    def __init__(self, max_bytes: int, max_header: int = MAX_HEADER, text_filter: Any = None):
        self.max_bytes = max_bytes
        self.max_header = max_header
        self.text_filter = text_filter
        self._buf = bytearray()
        self._header: tuple[dict, list[int]] | None = None
        self._hlen = 0
        self.last_size = 0  # bytes of the frame ``next`` returned last, header included

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._buf += data
        self._check()

    def pending(self) -> int:
        """Bytes buffered but not yet returned as a frame."""
        return len(self._buf)

    def _check(self) -> None:
        if self._header is None and len(self._buf) >= 4:
            (self._hlen,) = _LEN.unpack_from(self._buf)
            if self._hlen > self.max_header or self._hlen > self.max_bytes:
                raise TooLarge(f"header of {self._hlen} bytes is over the limit")
            if len(self._buf) >= 4 + self._hlen:
                raw = bytes(self._buf[4:4 + self._hlen])
                msg, lengths = _parse_header(raw)
                self._header = (self.text_filter(raw, msg) if self.text_filter else msg), lengths
                if self._hlen + sum(self._header[1]) > self.max_bytes:
                    raise TooLarge("message is over the size limit")

    def next(self) -> tuple[dict[str, Any], list[bytes]] | None:
        """Return ``(msg, blobs)`` of the first complete frame, or None if more bytes are needed."""
        self._check()
        if self._header is None:
            return None
        msg, lengths = self._header
        start = 4 + self._hlen
        if len(self._buf) < start + sum(lengths):
            return None
        blobs = []
        for n in lengths:
            blobs.append(bytes(self._buf[start:start + n]))
            start += n
        del self._buf[:start]
        self.last_size = start
        self._header = None
        self._check()
        return msg, blobs


def _parse_header(raw: bytes) -> tuple[dict, list[int]]:
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ProtocolError(f"garbage frame header ({type(exc).__name__})") from None
    if not isinstance(header, dict) or not isinstance(header.get("msg"), dict):
        raise ProtocolError("frame header is not a message")
    lengths = header.get("blobs")
    if not isinstance(lengths, list) or not all(type(n) is int and n >= 0 for n in lengths):
        raise ProtocolError("frame header has bad blob lengths")
    return header["msg"], lengths


def recv_frame(sock: Any, decoder: FrameDecoder) -> tuple[dict[str, Any], list[bytes]]:
    """Blocking read of one frame (worker side, whose peer is the trusted parent).

    Raises EOFError when the peer closed the connection before a whole frame arrived.
    """
    while True:
        frame = decoder.next()
        if frame is not None:
            return frame
        data = sock.recv(1 << 20)
        if not data:
            raise EOFError("connection closed")
        decoder.feed(data)
