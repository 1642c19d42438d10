r"""The matrix products a compiled XLA program performs, and the time each takes inside it.

:func:`products` reads the optimized HLO text of a compiled program
(``jitted.lower(*args).compile().as_text()``) and lists every ``dot``: its
operand shapes, contraction, the thunk that runs it (the dot itself, or the
fusion holding it, named as in a profile) and how many times one call runs it
(the product of the trip counts of the ``while`` loops around it).
:func:`thunk_seconds` profiles calls of the program with :mod:`jax.profiler` and
sums the time of each thunk, so each product's time *inside the program* is
measured, not estimated.

A product of ``A [b, m, k]`` and ``B [b, k, n]`` (batch ``b``, free ``m`` and
``n``, contracted ``k``) does :math:`2 b m k n` floating-point operations.
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Callable
from typing import NamedTuple

import jax


class Product(NamedTuple):
  """One ``dot`` of a compiled program."""

  dot: str  # the HLO instruction
  thunk: str  # the instruction the runtime runs and the profiler names (the dot, or its fusion)
  lhs: tuple[int, ...]  # operand shapes
  rhs: tuple[int, ...]
  lhs_contracting: tuple[int, ...]
  rhs_contracting: tuple[int, ...]
  lhs_batch: tuple[int, ...]
  rhs_batch: tuple[int, ...]
  dtype: str  # of the operands, as HLO names it (f32, bf16, ...)
  out_dtype: str  # of the result (f32 for bf16 operands accumulated in f32)
  calls: int | None  # per call of the program: the trip counts of the loops around it; None: unknown
  in_loop: bool  # inside a while loop (a per-step product of the recurrence)

  @property
  def bmkn(self) -> tuple[int, int, int, int]:
    """``(b, m, k, n)``: batch, lhs free, contracted, rhs free sizes.

    >>> p = Product("d", "d", (4, 8, 3), (4, 3, 5), (2,), (1,), (0,), (0,), "f32", "f32", 1, False)
    >>> p.bmkn, p.flops
    ((4, 8, 3, 5), 960)
    """
    b = math.prod(self.lhs[i] for i in self.lhs_batch)
    k = math.prod(self.lhs[i] for i in self.lhs_contracting)
    m = math.prod(self.lhs) // (b * k)
    n = math.prod(self.rhs) // (b * k)
    return b, m, k, n

  @property
  def flops(self) -> int:
    """Floating-point operations of one run: ``2 b m k n``."""
    b, m, k, n = self.bmkn
    return 2 * b * m * k * n

  @property
  def signature(self) -> tuple:
    """What a standalone measurement of the same product needs: shapes, contraction, dtype."""
    dims = self.lhs_contracting, self.rhs_contracting, self.lhs_batch, self.rhs_batch
    return self.lhs, self.rhs, *dims, self.dtype, self.out_dtype


_COMPUTATION = re.compile(r"^(ENTRY )?%?([\w.\-]+) .*\{$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = ")
_SHAPE = re.compile(r"^(\w+)\[([\d,]*)\]")
_CALLEE = re.compile(r"\b(calls|body|condition|to_apply|branch_computations)=\{?%?([\w.\-]+)")
_TRIP = re.compile(r'"known_trip_count":\{"n":"(\d+)"\}')


def _dims(attributes: str, key: str) -> tuple[int, ...]:
  match = re.search(rf"\b{key}=\{{([\d,]*)\}}", attributes)
  return tuple(int(d) for d in match.group(1).split(",") if d) if match else ()


def _split_type(rest: str) -> tuple[str, str]:
  """``(type, rest after it)`` of an instruction's right-hand side (a tuple type holds spaces)."""
  if not rest.startswith("("):
    kind, _, tail = rest.partition(" ")
    return kind, tail
  depth = 0
  for i, ch in enumerate(rest):
    depth += {"(": 1, ")": -1}.get(ch, 0)
    if depth == 0:
      return rest[: i + 1], rest[i + 2 :]
  raise ValueError(f"unbalanced tuple type in HLO: {rest[:80]!r}")


def products(hlo_text: str) -> list[Product]:
  """Every ``dot`` of an optimized HLO module, in program order.

  Raises:
    ValueError: the text holds no ``ENTRY`` computation (not an HLO module).

  >>> import jax.numpy as jnp
  >>> def f(h, w, x):
  ...   h = jax.lax.fori_loop(0, 5, lambda i, h: jnp.tanh(h @ w), h)
  ...   return h, x.T @ x
  >>> args = jnp.ones((8, 16)), jnp.ones((16, 16)), jnp.ones((32, 16))
  >>> [(p.bmkn, p.calls, p.in_loop) for p in products(jax.jit(f).lower(*args).compile().as_text())]
  [((1, 8, 16, 16), 5, True), ((1, 16, 32, 16), 1, False)]
  """
  shapes: dict[str, str] = {}
  where: dict[str, str] = {}  # instruction -> its computation
  callers: dict[
    str, tuple[str, str, str, int | None]
  ] = {}  # computation -> (instruction, its computation, role, trips)
  dots: list[tuple[str, str]] = []
  entry, computation = None, None
  for line in hlo_text.splitlines():
    if (match := _COMPUTATION.match(line)) and " = " not in line.split("{", 1)[0]:
      computation = match.group(2)
      entry = computation if match.group(1) else entry
      continue
    if computation is None or not (match := _INSTRUCTION.match(line)):
      continue
    name = match.group(1)
    kind, rest = _split_type(line[match.end() :])
    shapes[name], where[name] = kind, computation
    opcode = rest.split("(", 1)[0]
    trips = _TRIP.search(rest)
    for role, callee in _CALLEE.findall(rest):
      callers[callee] = (
        name,
        computation,
        "fusion" if opcode == "fusion" else role,
        int(trips.group(1)) if trips else None,
      )
    if opcode == "dot":
      dots.append((name, rest))
  if entry is None:
    raise ValueError("hlo_text: no ENTRY computation; pass the optimized HLO of a compiled program (.as_text())")
  found = []
  for name, rest in dots:
    operands = re.match(r"dot\(%?([\w.\-]+), %?([\w.\-]+)\)", rest)
    (dtype, lhs), (_, rhs) = (_shape(shapes[operands.group(i)]) for i in (1, 2))
    thunk, computation, calls, in_loop = name, where[name], 1, False
    while computation in callers and callers[computation][2] == "fusion":
      thunk, computation = callers[computation][:2]
    while computation != entry and computation in callers:
      _, parent, role, trips = callers[computation]
      if role == "body":
        in_loop = True
        calls = None if trips is None or calls is None else calls * trips
      computation = parent
    found.append(
      Product(
        name,
        thunk,
        lhs,
        rhs,
        _dims(rest, "lhs_contracting_dims"),
        _dims(rest, "rhs_contracting_dims"),
        _dims(rest, "lhs_batch_dims"),
        _dims(rest, "rhs_batch_dims"),
        dtype,
        _shape(shapes[name])[0],
        calls,
        in_loop,
      )
    )
  return found


def _shape(kind: str) -> tuple[str, tuple[int, ...]]:
  match = _SHAPE.match(kind)
  return match.group(1), tuple(int(d) for d in match.group(2).split(",") if d)


class Profile(NamedTuple):
  """Seconds per call: in each thunk (summed over loop iterations), and the profiled calls' wall clock."""

  thunks: dict[str, float]
  wall_s: float


def thunk_seconds(call: Callable[[], object], *, calls: int = 3) -> Profile:
  """The :class:`Profile` of ``calls`` calls of ``call()`` (which must wait for its results).

  Run ``call`` once before (to compile it): the profile then holds execution
  only. A thunk's time runs from its launch to its ``end: <thunk>`` event, so an
  asynchronous one (a plain dot on the CPU's thread pool) counts until it is
  done; thunks may run on several threads at once, so their sum can exceed the
  wall clock.

  Raises:
    ValueError: ``calls`` is not positive.
    RuntimeError: the profile holds no thunk (a backend whose runtime does not trace its thunks).
  """
  if calls < 1:
    raise ValueError(f"calls must be a positive number of profiled calls; got {calls}")
  with tempfile.TemporaryDirectory() as directory:
    jax.profiler.start_trace(directory, create_perfetto_trace=True)
    try:
      start = time.perf_counter()
      for _ in range(calls):
        call()
      wall = (time.perf_counter() - start) / calls
    finally:
      jax.profiler.stop_trace()
    (path,) = glob.glob(os.path.join(directory, "**", "perfetto_trace.json.gz"), recursive=True)
    with gzip.open(path, "rt", encoding="utf-8") as f:
      trace = json.load(f)
  events = trace["traceEvents"] if isinstance(trace, dict) else trace
  starts, ends = collections.defaultdict(list), collections.defaultdict(list)
  for event in events:
    if event.get("ph") == "X" and "dur" in event:
      name = event["name"]
      if name.startswith("end: "):
        ends[name[5:]].append(event["ts"])
      else:
        starts[name].append((event["ts"], event["dur"]))
  if not starts:
    raise RuntimeError("the profile holds no events: this backend's runtime does not trace its thunks")
  # A thunk's event ends when it is launched; an asynchronous one (a plain dot on the CPU's
  # thread pool) finishes later, at its "end: <thunk>" event: its time runs to that one.
  total: dict[str, float] = {}
  for name, began in starts.items():
    began.sort()
    done = sorted(ends.get(name, ()))
    if len(done) == len(began):
      spans = [max(dur, end - ts) for (ts, dur), end in zip(began, done, strict=True)]
    else:
      spans = [dur for _, dur in began]
    total[name] = sum(spans) * 1e-6 / calls
  return Profile(dict(total), wall)
