"""Report writers: JSON (everything), a Markdown table and a PNG chart of tokens/s."""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np

from benchmarking import roofline
from benchmarking.results import CaseResult
from benchmarking.results import Report
from benchmarking.results import RowResult

_MODE_TITLES = {
  "forward": "forward",
  "forward_backward": "forward+backward",
  "train_step": "training step (forward, loss, backward, Adam)",
  "policy_update": "recurrent policy update (loss and gradients over a rollout with resets)",
  "policy_step": "recurrent policy acting step (one step of every environment)",
}

# What the rows compute, for the reports holding cases of these modes.
_MODE_NOTES = {
  ("forward", "forward_backward", "train_step"): (
    "rows: `jaxgru.<implementation>` is `jaxgru.GRU(implementation=...)`, `flax` is"
    " `flax.linen.RNN(flax.linen.GRUCell)`, `torch` is `torch.nn.GRU`, `equinox` is `equinox.nn.GRUCell`"
    " under `lax.scan`; all on the same weights. forward+backward: the outputs and the gradients of"
    " `sum(outputs * cotangent)` with respect to the inputs and all weights"
  ),
  ("policy_update",): (
    "recurrent policy update: `policy.flax_cell` is purejaxrl's `ScannedRNN` (`flax.linen.GRUCell` under `nn.scan`, the carry"
    " zeroed with `jnp.where` where an episode ended), `policy.jaxgru_cell` the same with `jaxgru.GRUCell`,"
    " `policy.jaxgru_resets` one `jaxgru.GRU` call with `resets=` and zero `reset_carry=`,"
    " `policy.jaxgru_no_resets` the same layer without resets (other numbers: checked against its own"
    " reference; the speed reference of the resets). One call: the jitted loss of a linear value head"
    " (mean square error over every step) and its gradients w.r.t. the GRU and the head"
    " (see experiments/benchmarking/recurrent_policy.py)"
  ),
  ("policy_step",): (
    "recurrent policy acting step: the same rows acting: one step of every environment, the carry in and out, zeroed where the"
    " last step ended an episode (cells: one call; `jaxgru.GRU`: a T=1 sequence); tokens/s counts B"
    " per call"
  ),
}


def jsonable(value):
  """``value`` (dataclasses, NamedTuples, NumPy scalars, non-finite floats as strings) as plain JSON types."""
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)  # "inf": a result that could not be compared; JSON has no infinity
  if hasattr(value, "_asdict"):  # NamedTuple (Stats)
    return {k: jsonable(v) for k, v in value._asdict().items()}
  if dataclasses.is_dataclass(value):
    out = {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, CaseResult):
      out["label"] = value.label
    return out
  if isinstance(value, dict):
    return {str(k): jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [jsonable(v) for v in value]
  if isinstance(value, np.generic):
    return jsonable(value.item())
  return value


def to_json(report: Report) -> str:
  """The whole report as standard JSON (no NaN/Infinity literals)."""
  return json.dumps(jsonable(report), indent=1, allow_nan=False)


def _fmt(value, spec: str, scale: float = 1.0) -> str:
  return "n/a" if value is None else format(value * scale, spec)


def _row_cells(case: CaseResult, row: RowResult) -> list[str]:
  if not row.timed:
    why = {"mismatch": "FAILED CHECK", "error": "ERROR", "skipped": "skipped"}.get(row.status, row.status)
    note = f"{why}: {row.message}".replace("|", "/")
    return [
      case.label,
      row.name,
      "—",
      "—",
      "—",
      _fmt(row.first_call_s, ".2f"),
      "—",
      *["—" for _ in case.baselines],
      _fmt(row.max_abs_diff, ".1e") + f" {note}",
    ]
  s = row.stats
  first = _fmt(row.first_call_s, ".2f")
  base = case.baselines[0] if case.baselines else None
  if base in row.first_call_ratio_to and row.framework == "jax":
    first += f" ({row.first_call_ratio_to[base]:.2f}x)"
  return [
    case.label,
    row.name,
    f"{s.median * 1e3:.2f}",
    f"{s.q1 * 1e3:.2f}–{s.q3 * 1e3:.2f}",
    f"{row.tokens_per_s:,.0f}",
    first,
    _fmt(row.memory_bytes, ".1f", 2.0**-20),
    *[_fmt(row.ratio_to.get(b), ".2f") for b in case.baselines],
    f"{row.max_abs_diff:.1e}",
  ]


def _header(baselines) -> list[str]:
  first = f"first call s (×{baselines[0]})" if baselines else "first call s"
  return [
    "B×T×I×H",
    "implementation",
    "median ms",
    "IQR ms",
    "tokens/s",
    first,
    "memory MiB",
    *[f"×{b}" for b in baselines],
    "max abs diff",
  ]


def markdown_tables(report: Report) -> str:
  """One Markdown table per (mode, dtype): a row per shape and implementation.

  ``×flax`` and ``×torch`` (or the baselines the mode registered) are ratios
  of median times (below 1: faster); ``first call`` is trace + compile + one
  run for JAX rows.
  """
  groups: dict[tuple[str, str], list[CaseResult]] = {}
  for case in report.cases:
    groups.setdefault((case.mode, case.dtype), []).append(case)
  parts = []
  for (mode, dtype), cases in groups.items():
    header = _header(cases[0].baselines)  # one mode: the same baselines
    lines = [
      f"**{_MODE_TITLES.get(mode, mode)}, {dtype}**",
      "",
      "| " + " | ".join(header) + " |",
      "|" + "|".join("---" for _ in header) + "|",
    ]
    for case in cases:
      lines += ["| " + " | ".join(_row_cells(case, row)) + " |" for row in case.rows]
    parts.append("\n".join(lines))
  return "\n\n".join(parts) + "\n"


def markdown(report: Report) -> str:
  """A Markdown page: what ran where, then :func:`markdown_tables`."""
  env = report.environment
  versions = ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items() if v)
  cfg = report.config
  lines = ["# GRU benchmark", ""]
  if env.get("note"):
    lines += [f"> {env['note']}", ""]
  lines.append(f"- run: {env.get('utc')}, git {env.get('git_commit')}, {report.wall_s:.0f} s in all")
  if env.get("command"):
    lines.append(f"- command: `{env['command']}`")
  lines += [
    f"- device: JAX {env.get('jax_backend')} ({env.get('jax_device')}), {env.get('cpu_count')} CPUs ({env.get('cpu')})"
    + (f", torch on {env['torch_device']} with {env.get('torch_threads')} threads" if "torch_device" in env else ""),
    f"- versions: python {env.get('python')}, {versions}",
    *[f"- {note}" for mode, note in _MODE_NOTES.items() if any(case.mode in mode for case in report.cases)],
    f"- {cfg.get('repeats')} timed calls per row after {cfg.get('warmup')} warm-up call(s), rows interleaved;"
    " median and interquartile range; the × columns are ratios of median times to that row (below 1 is faster);"
    " max abs diff is against the float32 reference of the row's model at highest matmul precision"
    " (`jaxgru.scan` for GRU rows, Flax's cell under `nn.scan` for `policy.` rows);"
    " memory: JAX rows, XLA's buffers for one compiled call (arguments + outputs + temporaries);"
    " torch, `torch.cuda.max_memory_allocated`; n/a where the backend reports no device memory (CPU)",
    "",
  ]
  return "\n".join(lines) + "\n" + markdown_tables(report)


def roofline_page(report: Report) -> str | None:
  """``roofline.md``: each case's roofline sections (:func:`benchmarking.roofline.markdown`); None without any."""
  sections = [
    roofline.markdown(case.label, _MODE_TITLES.get(case.mode, case.mode), case.dtype, found)
    for case in report.cases
    for found in case.rooflines
  ]
  if not sections:
    return None
  env = report.environment
  head = [
    "# Roofline of the benchmark's rows",
    "",
    f"- run: {env.get('utc')}, git {env.get('git_commit')}; device: JAX {env.get('jax_backend')}"
    f" ({env.get('jax_device')}), {env.get('cpu_count')} CPUs ({env.get('cpu')})",
    "- per call of the row's compiled program: its matrix products read from the optimized HLO, each one's time"
    " inside the program from a profile of a few calls, and each product timed alone in the same run by every"
    " source named below (`xla`: as the program states it; `xla plain`: as `[b,m,k]x[b,k,n]`; `xla <flags>`: the"
    " same in a process with those XLA_FLAGS; `numpy`, `torch`: their BLAS). The floor is each product's FLOPs"
    " at its best source's rate; × floor is time over floor (1.00: at that rate). See benchmarking/roofline.py.",
    "",
  ]
  return "\n".join(head) + "\n" + "\n".join(sections)


def chart(report: Report):
  """Grouped bars of tokens/s (median, IQR whiskers), one panel per (mode, dtype), log scale.

  Returns:
    A ``matplotlib.figure.Figure`` drawn with the Agg canvas (no display, no global pyplot state).
  """
  # Imported here so that the rest of the benchmark works without matplotlib.
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
  from matplotlib.figure import Figure  # noqa: PLC0415

  groups: dict[tuple[str, str], list[CaseResult]] = {}
  for case in report.cases:
    groups.setdefault((case.mode, case.dtype), []).append(case)
  names = list(dict.fromkeys(row.name for case in report.cases for row in case.rows))
  most_cases = max((len(c) for c in groups.values()), default=1)
  fig = Figure(figsize=(3.0 + 0.35 * most_cases * max(1, len(names)), 3.2 * max(1, len(groups))), layout="constrained")
  FigureCanvasAgg(fig)
  width = 0.8 / max(1, len(names))
  for index, ((mode, dtype), cases) in enumerate(groups.items()):
    ax = fig.add_subplot(len(groups), 1, index + 1)
    for k, name in enumerate(names):
      xs, ys, lo, hi = [], [], [], []
      for i, case in enumerate(cases):
        row = next((r for r in case.rows if r.name == name and r.timed), None)
        if row is None:
          continue
        tokens = row.tokens_per_s * row.stats.median
        xs.append(i + (k - (len(names) - 1) / 2) * width)
        ys.append(row.tokens_per_s)
        lo.append(row.tokens_per_s - tokens / row.stats.q3)
        hi.append(tokens / row.stats.q1 - row.tokens_per_s)
      if xs:
        ax.bar(xs, ys, width, yerr=[lo, hi], label=name, capsize=2)
    ax.set_xticks(range(len(cases)), [c.label for c in cases])
    ax.set_yscale("log")
    ax.set_ylabel("tokens/s")
    ax.set_title(f"{_MODE_TITLES.get(mode, mode)}, {dtype}  (B×T×I×H; higher is better)")
  handles, labels = fig.axes[0].get_legend_handles_labels() if fig.axes else ([], [])
  fig.legend(handles, labels, loc="outside right upper", fontsize="small")
  return fig


def write_all(report: Report, output_dir: str | os.PathLike) -> dict[str, str]:
  """Writes ``results.json``, ``results.md``, ``tokens_per_s.png`` (and ``roofline.md``) into ``output_dir`` (created).

  Returns:
    ``{"json": path, "markdown": path, "chart": path}``, and ``"roofline"`` where a case has a roofline.
  """
  output_dir = os.fspath(output_dir)
  os.makedirs(output_dir, exist_ok=True)
  paths = {
    "json": os.path.join(output_dir, "results.json"),
    "markdown": os.path.join(output_dir, "results.md"),
    "chart": os.path.join(output_dir, "tokens_per_s.png"),
  }
  text = to_json(report)  # rendered before anything is written: a failure leaves no partial files
  page = markdown(report)
  fig = chart(report)
  roofs = roofline_page(report)
  with open(paths["json"], "w", encoding="utf-8") as f:
    f.write(text + "\n")
  with open(paths["markdown"], "w", encoding="utf-8") as f:
    f.write(page)
  fig.savefig(paths["chart"], dpi=110)
  if roofs is not None:
    paths["roofline"] = os.path.join(output_dir, "roofline.md")
    with open(paths["roofline"], "w", encoding="utf-8") as f:
      f.write(roofs)
  return paths
