"""Interleaved wall-clock timing and its summary statistics."""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


class Stats(NamedTuple):
  """Summary of the timed calls of one row, in seconds."""

  median: float
  q1: float  # 25th percentile
  q3: float  # 75th percentile
  min: float
  max: float
  n: int  # number of timed calls


def summarize(samples: Sequence[float]) -> Stats:
  """Median, quartiles and range of ``samples`` (seconds).

  Raises:
    ValueError: no samples.

  >>> summarize([3.0, 1.0, 2.0, 4.0, 5.0])
  Stats(median=3.0, q1=2.0, q3=4.0, min=1.0, max=5.0, n=5)
  """
  if len(samples) == 0:
    raise ValueError("summarize needs at least one sample")
  a = np.asarray(samples, np.float64)
  q1, median, q3 = np.percentile(a, [25, 50, 75])
  return Stats(float(median), float(q1), float(q3), float(a.min()), float(a.max()), int(a.size))


def time_call(call: Callable[[], object]) -> tuple[float, object]:
  """Seconds one ``call()`` takes (it must wait for its device itself), and its result."""
  start = time.perf_counter()
  result = call()
  return time.perf_counter() - start, result


class Samples(NamedTuple):
  """Seconds per timed call of each name: wall clock, and this process's CPU time (all its threads)."""

  wall: dict[str, list[float]]
  cpu: dict[str, list[float]]


def time_interleaved(
  calls: Mapping[str, Callable[[], object]],
  *,
  repeats: int,
  warmup: int = 0,
  on_round: Callable[[int, int], None] | None = None,
) -> dict[str, list[float]]:
  """Times every call ``repeats`` times, round-robin, so machine drift hits all alike.

  Round ``r`` starts at call ``r mod n`` (a rotation), so no call always runs
  right after the same neighbour. ``warmup`` untimed rounds come first. The
  one timing loop of every measurement in experiments/.

  Args:
    calls: ``{name: call}``; each call must block until its work is done.
    repeats: timed rounds.
    warmup: untimed rounds before them.
    on_round: called as ``on_round(done, total)`` after every round (progress).

  Returns:
    ``{name: [seconds per timed call]}`` (wall clock); :func:`time_interleaved_with_cpu`
    adds the process's CPU time.

  Raises:
    ValueError: ``repeats < 1`` or ``warmup < 0``.

  >>> times = time_interleaved({"a": lambda: None, "b": lambda: None}, repeats=3)
  >>> sorted(times), len(times["a"])
  (['a', 'b'], 3)
  """
  return time_interleaved_with_cpu(calls, repeats=repeats, warmup=warmup, on_round=on_round).wall


def time_interleaved_with_cpu(
  calls: Mapping[str, Callable[[], object]],
  *,
  repeats: int,
  warmup: int = 0,
  on_round: Callable[[int, int], None] | None = None,
) -> Samples:
  """:func:`time_interleaved`, with this process's CPU time per call beside the wall clock.

  On a machine shared with other jobs the CPU time is the steadier figure: it
  does not count time spent descheduled.

  >>> samples = time_interleaved_with_cpu({"a": lambda: sum(range(1000))}, repeats=2, warmup=1)
  >>> len(samples.wall["a"]), len(samples.cpu["a"])
  (2, 2)
  """
  if repeats < 1 or warmup < 0:
    raise ValueError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
  names = list(calls)
  samples = Samples({n: [] for n in names}, {n: [] for n in names})
  total = warmup + repeats
  for r in range(total):
    shift = r % len(names) if names else 0
    for name in names[shift:] + names[:shift]:
      cpu = time.process_time()
      seconds, _ = time_call(calls[name])
      cpu = time.process_time() - cpu
      if r >= warmup:
        samples.wall[name].append(seconds)
        samples.cpu[name].append(cpu)
    if on_round is not None:
      on_round(r + 1, total)
  return samples
