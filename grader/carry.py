"""Substitution: run a reference function with some of its building blocks replaced.

The engine of "error carried forward" and of propagated mistakes, and assignment-agnostic: a
reference composite (``encoder_layer``) calls its building blocks (``self_attention``) by name, so
re-creating the reference's functions over a copy of its globals in which a building block is
replaced runs the composite on that other building block, at any depth of nesting.

- :func:`trace` finds which of the assignment's functions a reference function calls on a case;
- :func:`propagate` gives a composite's output when a building block has a known mistake (so an
  assignment declares each mistake once, on the function where it is made);
- :func:`replay` gives the reference composite's output when its building blocks return what the
  student's own building blocks returned inside the student's composite (recorded in the sandbox).

Everything here runs in the trusted parent on reference code and plain data; no student code runs.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from types import FunctionType, ModuleType
from typing import Any, Callable

import numpy as np

Close = Callable[[np.ndarray, np.ndarray], bool]


@dataclass(frozen=True, eq=False)
class RecordedCall:
    """One call the student's composite made to one of the student's own API functions."""

    function: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    value: Any


class Recording:
    """The calls a composite made to the student's own functions, as the sandbox sent them: decoded (by
    the protocol's value decoder, never anything that runs code) only when a replay needs them, since
    most composites pass and need none."""

    def __init__(self, entries: list[Any], blobs: list[bytes], asked: tuple[str, ...],
                 decode: Callable[[Any, list[bytes]], Any]):
        self._entries, self._blobs, self._asked, self._decode = entries[:64], blobs, asked, decode
        self._calls: tuple[RecordedCall, ...] | None = None

    def __bool__(self) -> bool:
        return bool(self._entries)

    def calls(self) -> tuple[RecordedCall, ...]:
        if self._calls is None:
            found = []
            for entry in self._entries:
                if not isinstance(entry, dict) or entry.get("function") not in self._asked:
                    continue
                try:
                    args, kwargs, value = (self._decode(entry.get(k), self._blobs) for k in ("args", "kwargs", "value"))
                except Exception:  # noqa: BLE001 - malformed (ProtocolError, RecursionError): dropped
                    continue
                if isinstance(args, tuple) and isinstance(kwargs, dict):
                    found.append(RecordedCall(str(entry["function"]), args, kwargs, value))
            self._calls = tuple(found)
        return self._calls


@dataclass(frozen=True)
class Replayed:
    """The reference composite's output on the student's building blocks, and which ones it used."""

    value: np.ndarray
    used: tuple[RecordedCall, ...]  # the recorded calls whose outputs were substituted


def rebind(reference: ModuleType, replacements: dict[str, Callable[..., Any]]) -> dict[str, Any]:
    """The reference module's namespace with its functions re-created over it and ``replacements``
    put in: every call by name inside a reference function then reaches the replacement."""
    namespace: dict[str, Any] = dict(vars(reference))
    for name, value in vars(reference).items():
        if isinstance(value, FunctionType) and value.__module__ == reference.__name__:
            fresh = FunctionType(value.__code__, namespace, value.__name__, value.__defaults__, value.__closure__)
            fresh.__kwdefaults__ = value.__kwdefaults__
            namespace[name] = fresh
    originals = {name: namespace[name] for name in replacements if name in namespace}
    namespace.update({name: make(originals.get(name)) if getattr(make, "_wraps", False) else make
                      for name, make in replacements.items()})
    return namespace


def _wrapper(factory: Callable[[Callable[..., Any] | None], Callable[..., Any]]) -> Callable[..., Any]:
    """Mark a factory that needs the rebound original it replaces."""
    factory._wraps = True  # type: ignore[attr-defined]
    return factory


def fresh(value: Any) -> Any:
    """A copy of case inputs (arrays, tuples, lists, dicts of them), much cheaper than deepcopy."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, tuple):
        return tuple(fresh(v) for v in value)
    if isinstance(value, list):
        return [fresh(v) for v in value]
    if isinstance(value, dict):
        return {k: fresh(v) for k, v in value.items()}
    if isinstance(value, (int, float, str, bool, type(None), np.generic)):
        return value
    return copy.deepcopy(value)


def _call(function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    result = function(*fresh(args), **fresh(kwargs))
    return float(result) if isinstance(result, (float, int)) else np.asarray(result, dtype=np.float64)


def trace(reference: ModuleType, function: str, api: tuple[str, ...], args: tuple[Any, ...],
          kwargs: dict[str, Any]) -> tuple[str, ...]:
    """The API functions (other than ``function``) the reference calls on these inputs, at any depth."""
    seen: dict[str, None] = {}

    def tracer(name: str) -> Callable[..., Any]:
        def factory(original: Callable[..., Any] | None) -> Callable[..., Any]:
            def traced(*a: Any, **k: Any) -> Any:
                seen.setdefault(name, None)
                assert original is not None
                return original(*a, **k)
            return traced
        return _wrapper(factory)

    names = [n for n in api if n != function and callable(getattr(reference, n, None))]
    namespace = rebind(reference, {n: tracer(n) for n in names})
    try:
        _call(namespace[function], args, kwargs)
    except Exception:  # noqa: BLE001 - a reference that cannot run here says nothing
        return ()
    return tuple(seen)


def propagate(reference: ModuleType, function: str, building_block: str, implementation: Callable[..., Any],
              args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any | None:
    """The reference ``function``'s output when ``building_block`` is ``implementation`` (e.g. a
    known mistake), or None when that cannot run on these inputs."""
    namespace = rebind(reference, {building_block: implementation})
    try:
        with np.errstate(all="ignore"):
            return _call(namespace[function], args, kwargs)
    except Exception:  # noqa: BLE001 - the imitated mistake cannot run here (e.g. a shape mismatch)
        return None


def replay(reference: ModuleType, function: str, api: tuple[str, ...], args: tuple[Any, ...],
           kwargs: dict[str, Any], recorded: tuple[RecordedCall, ...], close: Close) -> Replayed | None:
    """The reference ``function`` run with each building-block call answered by the student's own
    recorded call on the same inputs (inputs equal within ``close``); a call the student never made
    is answered by the reference. None when nothing was substituted or the replay cannot run."""
    used: list[RecordedCall] = []

    def substitute(name: str) -> Callable[..., Any]:
        signature = _signature(getattr(reference, name))

        def factory(original: Callable[..., Any] | None) -> Callable[..., Any]:
            def answered(*a: Any, **k: Any) -> Any:
                wanted = _bound(signature, a, k)
                for call in recorded:
                    if call.function == name and wanted is not None and \
                            _same_inputs(wanted, _bound(signature, call.args, call.kwargs), close):
                        value = np.asarray(call.value, dtype=np.float64)
                        if not any(u is call for u in used):
                            used.append(call)
                        return value.copy()
                assert original is not None
                return original(*a, **k)
            return answered
        return _wrapper(factory)

    names = [n for n in api if n != function and callable(getattr(reference, n, None))]
    if not any(call.function in names for call in recorded):
        return None
    namespace = rebind(reference, {n: substitute(n) for n in names})
    try:
        with np.errstate(all="ignore"):
            value = _call(namespace[function], args, kwargs)
    except Exception:  # noqa: BLE001 - the student's building blocks returned something unusable
        return None
    if not used:
        return None
    return Replayed(np.asarray(value, dtype=np.float64), tuple(used))


def differs(reference: ModuleType, call: RecordedCall, close: Close) -> bool:
    """Whether the student's recorded building-block call differs from the reference on its inputs."""
    try:
        expected = _call(getattr(reference, call.function), call.args, call.kwargs)
        received = np.asarray(call.value, dtype=np.float64)
    except Exception:  # noqa: BLE001
        return True
    expected = np.asarray(expected, dtype=np.float64)
    return received.shape != expected.shape or not close(received, expected)


def _signature(function: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(function)
    except (TypeError, ValueError):
        return None


def _bound(signature: inspect.Signature | None, args: tuple[Any, ...], kwargs: dict[str, Any]
           ) -> dict[str, Any] | None:
    if signature is None:
        return None
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    return dict(bound.arguments)


def _same_inputs(a: Any, b: Any, close: Close) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_inputs(a[k], b[k], close) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_inputs(x, y, close) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        try:
            x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        except (TypeError, ValueError):
            return False
        return x.shape == y.shape and close(x, y)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return bool(np.isclose(float(a), float(b), rtol=1e-9, atol=0.0))
    return bool(a == b)
