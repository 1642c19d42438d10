"""What the GPU check's measurements say: a proposal for ``"auto"`` on this GPU and the issue's speed goals."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from benchmarking import registry
from benchmarking import results as results_lib

# What jaxgru's dispatch picks for "auto" on a GPU before any measurement (jaxgru/_src/dispatch.py).
CURRENT_GPU_AUTO = "custom_vjp"


def propose_gpu_auto(
  accuracy_results: Sequence[dict], cases: Sequence[results_lib.CaseResult], *, current: str = CURRENT_GPU_AUTO
) -> dict:
  """What ``"auto"`` should pick on this GPU, per H, from the forward+backward timings.

  An implementation is eligible when it passed every accuracy check it had and
  was timed in every forward+backward case of that H. The choice moves away
  from ``current`` only to an implementation faster in every such case by more
  than the spread (its upper quartile below the current one's lower quartile);
  otherwise it stays.

  Returns:
    ``{"current": ..., "by_hidden": [{"hidden", "choice", "fastest", "geomean_ratio_to_current",
    "cases"}], "dispatch_rule": a Python line for jaxgru/_src/dispatch.py}``.
  """
  failed = {r["implementation"] for r in accuracy_results if r.get("status") not in ("ok", "not run")}
  checked = {r["implementation"] for r in accuracy_results if r.get("status") == "ok"}
  by_hidden: dict[int, list] = {}
  for case in cases:
    if case.mode == registry.Mode.FORWARD_BACKWARD.value:
      by_hidden.setdefault(case.shape[3], []).append(case)
  proposal = []
  for hidden, group in sorted(by_hidden.items()):
    timed: dict[str, list] = {}
    for case in group:
      rows = {r.name.removeprefix("jaxgru."): r for r in case.rows if r.name.startswith("jaxgru.") and r.timed}
      for name, row in rows.items():
        timed.setdefault(name, []).append((case.label + " " + case.dtype, row.stats))
    eligible = {n: s for n, s in timed.items() if len(s) == len(group) and n in checked and n not in failed}
    entry = {
      "hidden": hidden,
      "cases": [c.label + " " + c.dtype for c in group],
      "choice": current,
      "fastest": None,
      "geomean_ratio_to_current": {},
      "why": "",
    }
    if current not in eligible:
      entry["why"] = f"{current} was not checked and timed in every case of this H: no change"
      proposal.append(entry)
      continue
    base = dict(eligible[current])
    ratios = {
      n: math.exp(np.mean([math.log(st.median / base[label].median) for label, st in s])) for n, s in eligible.items()
    }
    fastest = min(ratios, key=ratios.get)
    clearly = all(st.q3 < base[label].q1 for label, st in eligible[fastest])
    entry.update(fastest=fastest, geomean_ratio_to_current={n: round(r, 4) for n, r in ratios.items()})
    if fastest != current and clearly:
      entry["choice"] = fastest
      entry["why"] = f"{fastest} faster than {current} in every case beyond the interquartile spread"
    else:
      entry["why"] = (
        "the current choice is the fastest"
        if fastest == current
        else f"{fastest} is not faster beyond the spread in every case: no change"
      )
    proposal.append(entry)
  table = tuple((e["hidden"], e["choice"]) for e in proposal)
  return {
    "current": current,
    "by_hidden": proposal,
    "dispatch_rule": f"GPU_AUTO_BY_HIDDEN = {table!r}  # (largest H measured, implementation); above: the last",
  }


def goals(cases: Sequence[results_lib.CaseResult]) -> list[dict]:
  """The issue's speed goals at KernelBench's and the post's shapes: best and current-``auto`` row vs torch and flax."""
  out = []
  for case in cases:
    if case.mode != registry.Mode.FORWARD_BACKWARD.value or case.shape[0] not in (10, 1024):
      continue
    rows = {r.name: r for r in case.rows if r.timed}
    jax_rows = {n: r for n, r in rows.items() if n.startswith("jaxgru.")}
    if not jax_rows:
      continue
    best = min(jax_rows.values(), key=lambda r: r.stats.median)
    auto = rows.get(f"jaxgru.{CURRENT_GPU_AUTO}")
    out.append(
      {
        "case": f"{case.label} {case.dtype}",
        "best": best.name,
        "best_x_torch": best.ratio_to.get("torch"),
        "best_x_flax": best.ratio_to.get("flax"),
        "auto_x_torch": auto.ratio_to.get("torch") if auto else None,
        "auto_x_flax": auto.ratio_to.get("flax") if auto else None,
      }
    )
  return out
