"""Side-by-side report of finished energy runs (the FloydHub GRU post's GRU vs LSTM): a table and one plot.

Reads each run folder's ``summary.json`` and ``test_predictions.npz`` as
written by :func:`training.trainer.train_and_evaluate`.

Example:

>>> row = {"model": "gru", "smape": 1.5, "mae": 150.0, "rmse": 200.0, "naive_smape": 3.0,
...        "seconds_per_epoch": 60.0, "num_params": 596993}
>>> print(markdown([row]).splitlines()[-1])
| gru | 1.500 | 150.00 | 200.00 | 3.000 | 60.0 | 596,993 |
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

from training import plots

COLUMNS = ("model", "smape", "mae", "rmse", "naive_smape", "seconds_per_epoch", "num_params")


def load_run(workdir: str) -> dict:
  """The summary of a finished energy run, with its test forecasts.

  Raises:
    ValueError: the folder holds no finished run, or not an energy run.
  """
  path = os.path.join(workdir, "summary.json")
  if not os.path.exists(path):
    raise ValueError(f"{workdir} holds no finished run (no summary.json); train it first")
  with open(path, encoding="utf-8") as f:
    summary = json.load(f)
  if summary.get("task") != "energy":
    raise ValueError(f"{workdir} is a {summary.get('task')!r} run; only energy runs can be compared")
  with np.load(os.path.join(workdir, "test_predictions.npz")) as arrays:
    summary["predictions"] = {k: arrays[k] for k in arrays.files}
  summary["workdir"] = workdir
  return summary


def comparison_table(runs: Sequence[dict]) -> list[dict]:
  """One row per run: :data:`COLUMNS` (errors on the original scale, sMAPE in percent)."""
  rows = []
  for run in runs:
    test = run["test"]
    rows.append({
        "model": run["model"],
        "smape": test["smape"],
        "mae": test["mae"],
        "rmse": test["rmse"],
        "naive_smape": test["naive_smape"],
        "seconds_per_epoch": run["seconds_per_epoch"],
        "num_params": run["num_params"],
        "workdir": run["workdir"],
    })
  return rows


def markdown(rows: Sequence[dict]) -> str:
  """The table as GitHub Markdown."""
  head = "| model | sMAPE % | MAE | RMSE | naive sMAPE % | s / epoch | parameters |"
  lines = [head, "|---|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(
        f"| {r['model']} | {r['smape']:.3f} | {r['mae']:.2f} | {r['rmse']:.2f} | {r['naive_smape']:.3f} | "
        f"{r['seconds_per_epoch']:.1f} | {r['num_params']:,} |"
    )
  return "\n".join(lines)


def compare(workdirs: Sequence[str], output_dir: str, *, hours: int = 336) -> list[dict]:
  """Writes ``comparison.json``, ``comparison.md`` and ``comparison.png`` (forecasts vs actual) to ``output_dir``.

  The runs must forecast the same test windows (the same data and lookback).
  """
  runs = [load_run(w) for w in workdirs]
  actual = runs[0]["predictions"]["actual"]
  for run in runs[1:]:
    if not np.array_equal(run["predictions"]["actual"], actual):
      raise ValueError(f"{run['workdir']} and {runs[0]['workdir']} were tested on different data; compare runs of the same files")
  rows = comparison_table(runs)
  os.makedirs(output_dir, exist_ok=True)
  with open(os.path.join(output_dir, "comparison.json"), "w", encoding="utf-8") as f:
    json.dump(rows, f, indent=2)
  with open(os.path.join(output_dir, "comparison.md"), "w", encoding="utf-8") as f:
    f.write(markdown(rows) + "\n")
  first = runs[0]["predictions"]
  in_first_file = first["file_index"] == first["file_index"][0]
  window = slice(0, hours)
  forecasts = {f"{r['model']} ({os.path.basename(os.path.normpath(r['workdir']))})": r["predictions"]["forecast"][in_first_file][window] for r in runs}
  forecasts["naive last value"] = first["naive"][in_first_file][window]
  plots.plot_forecast(
      os.path.join(output_dir, "comparison.png"),
      actual[in_first_file][window],
      forecasts,
      title=f"{first['files'][0]}: forecasts vs actual, first {int(min(hours, in_first_file.sum()))} test hours",
  )
  return rows
