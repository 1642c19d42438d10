"""Side-by-side report of finished energy runs (the FloydHub GRU post's GRU vs LSTM): a table and one plot.

Reads each run folder's ``summary.json`` and ``test_predictions.npz`` as
written by :func:`training.trainer.train_and_evaluate`. Runs of one model with
several seeds are also summarized as mean and standard deviation.

Example:

>>> row = {"model": "gru", "seed": 0, "smape": 1.5, "mae": 15.0, "rmse": 20.0, "last_hour_smape": 8.0,
...        "same_hour_yesterday_smape": 4.0, "same_hour_last_week_smape": 5.4,
...        "seconds_per_epoch": 60.0, "train_seconds": 300.0, "num_params": 596993}
>>> print(markdown([row]).splitlines()[-1])
| gru | 0 | 1.500 | 15.00 | 20.00 | 8.000 | 4.000 | 5.400 | 60.0 | 300 | 596,993 |
>>> print(markdown_seeds([row, {**row, "seed": 1, "smape": 2.5}]).splitlines()[-1])
| gru | 2 | 2.000 ± 0.707 | 15.00 ± 0.00 | 20.00 ± 0.00 | 4.000 | 60.0 |
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

from training import energy
from training import plots

BASELINES = tuple(f"{name}_smape" for name in energy.NAIVE_LAGS)
COLUMNS = ("model", "seed", "smape", "mae", "rmse", *BASELINES, "seconds_per_epoch", "train_seconds", "num_params")


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
        "seed": run.get("seed"),
        **{k: test[k] for k in ("smape", "mae", "rmse")},
        **{k: test.get(k, float("nan")) for k in BASELINES},
        "seconds_per_epoch": run["seconds_per_epoch"],
        "train_seconds": run["train_seconds"],
        "num_params": run["num_params"],
        "workdir": run["workdir"],
    })
  return rows


def markdown(rows: Sequence[dict]) -> str:
  """The table as GitHub Markdown, one line per run."""
  head = ("| model | seed | sMAPE % | MAE | RMSE | naive last hour sMAPE % | naive same hour yesterday sMAPE % | "
          "naive same hour last week sMAPE % | s / epoch | training s | parameters |")
  lines = [head, "|---" * head.count(" | ") + "|---|"]
  for r in rows:
    lines.append(
        f"| {r['model']} | {r['seed']} | {r['smape']:.3f} | {r['mae']:.2f} | {r['rmse']:.2f} | "
        + " | ".join(f"{r[k]:.3f}" for k in BASELINES)
        + f" | {r['seconds_per_epoch']:.1f} | {r['train_seconds']:.0f} | {r['num_params']:,} |"
    )
  return "\n".join(lines)


def seed_summary(rows: Sequence[dict]) -> list[dict]:
  """Mean and sample standard deviation over the runs of each model (in order of first appearance)."""
  summaries = []
  for model in dict.fromkeys(r["model"] for r in rows):
    runs = [r for r in rows if r["model"] == model]
    summary = {"model": model, "runs": len(runs)}
    for key in ("smape", "mae", "rmse", "seconds_per_epoch"):
      values = np.array([r[key] for r in runs], np.float64)
      summary[key] = float(values.mean())
      summary[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    summary["best_naive_smape"] = min(runs[0][k] for k in BASELINES)
    summaries.append(summary)
  return summaries


def markdown_seeds(rows: Sequence[dict]) -> str:
  """Mean ± sample standard deviation of each model's runs, as GitHub Markdown."""
  head = "| model | runs | sMAPE % | MAE | RMSE | best naive sMAPE % | s / epoch |"
  lines = [head, "|---|---|---|---|---|---|---|"]
  for s in seed_summary(rows):
    lines.append(
        f"| {s['model']} | {s['runs']} | {s['smape']:.3f} ± {s['smape_std']:.3f} | {s['mae']:.2f} ± {s['mae_std']:.2f} | "
        f"{s['rmse']:.2f} ± {s['rmse_std']:.2f} | {s['best_naive_smape']:.3f} | {s['seconds_per_epoch']:.1f} |"
    )
  return "\n".join(lines)


def compare(workdirs: Sequence[str], output_dir: str, *, hours: int = 168) -> list[dict]:
  """Writes ``comparison.json``, ``comparison.md`` and ``comparison.png`` (forecasts vs actual) to ``output_dir``.

  The runs must forecast the same test windows (the same data and lookback).
  With several runs of one model, ``comparison.md`` adds their mean ± standard
  deviation, and the plot shows each model's first run.

  Raises:
    ValueError: a folder holds no finished energy run, or the runs were tested on different data.
  """
  runs = [load_run(w) for w in workdirs]
  actual = runs[0]["predictions"]["actual"]
  for run in runs[1:]:
    if not np.array_equal(run["predictions"]["actual"], actual):
      raise ValueError(f"{run['workdir']} and {runs[0]['workdir']} were tested on different data; compare runs of the same files")
  rows = comparison_table(runs)
  several_seeds = len({r["model"] for r in rows}) < len(rows)
  os.makedirs(output_dir, exist_ok=True)
  with open(os.path.join(output_dir, "comparison.json"), "w", encoding="utf-8") as f:
    json.dump({"runs": rows, "models": seed_summary(rows)}, f, indent=2)
  with open(os.path.join(output_dir, "comparison.md"), "w", encoding="utf-8") as f:
    f.write(markdown(rows) + "\n")
    if several_seeds:
      f.write("\nMean ± sample standard deviation over the runs of each model:\n\n" + markdown_seeds(rows) + "\n")
  first_runs = {}
  for run in runs:
    first_runs.setdefault(run["model"].upper(), run["predictions"]["forecast"])
  plots.plot_test_forecasts(os.path.join(output_dir, "comparison.png"), runs[0]["predictions"], first_runs, hours=hours)
  return rows
