"""The equality check run before timing: a fast wrong answer can never win."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np


class CheckResult(NamedTuple):
  """How far one peer's result is from the reference."""

  ok: bool  # every array within tolerance, same names and shapes, all finite
  max_abs_diff: float  # over all arrays; inf when names/shapes differ or a value is not finite
  worst: str  # the array with the largest diff relative to its allowance
  diffs: dict  # {name: max |result - reference|}
  message: str  # one line for logs and reports


def compare(
  result: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray], *, atol: float, rtol: float
) -> CheckResult:
  """Compares a peer's flat result dict with the reference, array by array.

  An array passes when :math:`\\max|x - r| \\le \\mathrm{atol} + \\mathrm{rtol} \\cdot \\max|r|`;
  the scale is per array because gradients of long sequences are large.

  Args:
    result: ``{name: array}`` from a runner's ``to_numpy``.
    reference: the same names from the model's reference.
    atol: absolute tolerance.
    rtol: tolerance relative to the largest reference magnitude of each array.

  Returns:
    A :class:`CheckResult`.

  >>> ref = {"outputs": np.array([0.5, -0.25])}
  >>> compare({"outputs": np.array([0.5, -0.25])}, ref, atol=1e-6, rtol=0).ok
  True
  >>> bad = compare({"outputs": np.array([0.5, 0.25])}, ref, atol=1e-6, rtol=0)
  >>> bad.ok, bad.max_abs_diff, bad.worst
  (False, 0.5, 'outputs')
  """
  if set(result) != set(reference):
    missing, extra = sorted(set(reference) - set(result)), sorted(set(result) - set(reference))
    return CheckResult(False, float("inf"), "", {}, f"result arrays differ: missing {missing}, unexpected {extra}")
  diffs, worst, worst_ratio, failures = {}, "", -1.0, []
  for name in sorted(reference):
    ref = np.asarray(reference[name], np.float64)
    got = np.asarray(result[name], np.float64)
    if got.shape != ref.shape:
      return CheckResult(False, float("inf"), name, diffs, f"{name}: shape {got.shape}, expected {ref.shape}")
    diff = float(np.max(np.abs(got - ref))) if ref.size else 0.0
    if not np.all(np.isfinite(got)):
      diff = float("inf")
    allowed = atol + rtol * (float(np.max(np.abs(ref))) if ref.size else 0.0)
    diffs[name] = diff
    ratio = diff / allowed if allowed > 0 else (0.0 if diff == 0 else float("inf"))
    if ratio > worst_ratio:
      worst, worst_ratio = name, ratio
    if not diff <= allowed:
      failures.append(f"{name} {diff:.3g} > {allowed:.3g}")
  max_diff = max(diffs.values(), default=0.0)
  if failures:
    return CheckResult(False, max_diff, worst, diffs, "MISMATCH: " + "; ".join(failures))
  return CheckResult(True, max_diff, worst, diffs, f"ok, max|diff| {max_diff:.2e} (worst: {worst})")
