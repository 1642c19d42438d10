"""Side-by-side report of finished energy runs (the FloydHub GRU post's GRU vs LSTM): a table and one plot.

Reads each run folder's ``summary.json`` and ``test_predictions.npz`` as
written by :func:`training.trainer.train_and_evaluate`. Runs of one model with
several seeds are also summarized as mean and standard deviation.

Example:

>>> row = {"model": "gru", "label": "gru 1x64", "seed": 0, "smape": 1.5, "mae": 15.0, "rmse": 20.0, "ridge_smape": 1.8,
...        "lightgbm_smape": None, "ridge_mae": 13.3, "last_hour_smape": 8.0,
...        "same_hour_yesterday_smape": 4.0, "same_hour_last_week_smape": 5.4,
...        "seconds_per_epoch": 60.0, "train_seconds": 300.0, "num_params": 596993}
>>> print(markdown([row]).splitlines()[-1])
| gru 1x64 | 0 | 1.500 | 15.00 | 20.00 | 1.800 | 13.30 | 8.000 | 4.000 | 5.400 | 60.0 | 300 | 596,993 |
>>> print(markdown_seeds([row, {**row, "seed": 1, "smape": 2.5}]).splitlines()[-1])
| gru 1x64 | 2 | 2.000 ± 0.707 | 2.500 | 1 of 2 | 1.800 | 4.000 | 15.00 ± 0.00 | 20.00 ± 0.00 | 60.0 | 300 |
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import yaml

from training import baselines
from training import energy
from training import plots

NAIVE = tuple(f"{name}_smape" for name in energy.NAIVE_LAGS)
FITTED = tuple(f"{name}_smape" for name in baselines.KINDS)
COLUMNS = (
  "model",
  "label",
  "seed",
  "smape",
  "mae",
  "rmse",
  *FITTED,
  "ridge_mae",
  *NAIVE,
  "seconds_per_epoch",
  "train_seconds",
  "num_params",
)


def model_label(config: dict) -> str:
  """``gru 1x64 +highway48``: the kind, layers x hidden, and the highway where there is one, of a run's ``model`` section."""
  label = f"{config['kind']} {config['num_layers']}x{config['hidden']}"
  return label + (f" +highway{config['highway']}" if config.get("highway") else "")


def load_run(workdir: str) -> dict:
  """The summary of a finished energy run, with its test forecasts and the label of its model.

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
  with open(os.path.join(workdir, "config.yaml"), encoding="utf-8") as f:
    summary["label"] = model_label(yaml.safe_load(f)["model"])
  summary["workdir"] = workdir
  return summary


def comparison_table(runs: Sequence[dict]) -> list[dict]:
  """One row per run: :data:`COLUMNS` (errors on the original scale, sMAPE in percent; ``None`` for a baseline not scored).

  ``model`` is the kind (gru, lstm), ``label`` the kind, size and highway (:func:`model_label`).
  """
  rows = []
  for run in runs:
    test = run["test"]
    rows.append(
      {
        "model": run["model"],
        "label": run["label"],
        "seed": run.get("seed"),
        **{k: test[k] for k in ("smape", "mae", "rmse")},
        **{k: test.get(k) for k in (*FITTED, "ridge_mae", *NAIVE)},
        "seconds_per_epoch": run["seconds_per_epoch"],
        "train_seconds": run["train_seconds"],
        "num_params": run["num_params"],
        "workdir": run["workdir"],
      }
    )
  return rows


def _fitted_columns(rows: Sequence[dict]) -> list[str]:
  return [k for k in FITTED if any(r[k] is not None for r in rows)]


def _number(value: float | None, digits: int) -> str:
  return "-" if value is None else f"{value:.{digits}f}"


def markdown(rows: Sequence[dict]) -> str:
  """The table as GitHub Markdown, one line per run; a fitted baseline's column only where a run fitted it."""
  fitted = _fitted_columns(rows)
  head = (
    "| model | seed | sMAPE % | MAE | RMSE | "
    + "".join(f"{k[:-6]} sMAPE % | " for k in fitted)
    + ("ridge MAE | " if "ridge_smape" in fitted else "")
    + "naive last hour sMAPE % | naive same hour yesterday sMAPE % | naive same hour last week sMAPE % | "
    "s / epoch | training s | parameters |"
  )
  lines = [head, "|---" * head.count(" | ") + "|---|"]
  for r in rows:
    lines.append(
      f"| {r['label']} | {r['seed']} | {r['smape']:.3f} | {r['mae']:.2f} | {r['rmse']:.2f} | "
      + "".join(f"{_number(r[k], 3)} | " for k in fitted)
      + (f"{_number(r['ridge_mae'], 2)} | " if "ridge_smape" in fitted else "")
      + " | ".join(_number(r[k], 3) for k in NAIVE)
      + f" | {r['seconds_per_epoch']:.1f} | {r['train_seconds']:.0f} | {r['num_params']:,} |"
    )
  return "\n".join(lines)


def seed_summary(rows: Sequence[dict]) -> list[dict]:
  """Mean and sample standard deviation over the runs of each model label (in order of first appearance).

  Each summary also holds the baselines' sMAPE (the same for every seed: they are fitted on the data
  alone), the best naive sMAPE, and how many runs beat the ridge regression.
  """
  summaries = []
  for label in dict.fromkeys(r["label"] for r in rows):
    runs = [r for r in rows if r["label"] == label]
    summary = {"model": label, "runs": len(runs)}
    for key in ("smape", "mae", "rmse", "seconds_per_epoch", "train_seconds"):
      values = np.array([r[key] for r in runs], np.float64)
      summary[key] = float(values.mean())
      summary[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    summary["smape_max"] = max(r["smape"] for r in runs)
    for key in FITTED:  # fitted on the data alone: the same for every seed
      values = [r[key] for r in runs if r[key] is not None]
      summary[key] = float(np.mean(values)) if values else None
    summary["best_naive_smape"] = min((runs[0][k] for k in NAIVE if runs[0][k] is not None), default=None)
    summary["runs_beating_ridge"] = sum(r["ridge_smape"] is not None and r["smape"] < r["ridge_smape"] for r in runs)
    summaries.append(summary)
  return summaries


def markdown_seeds(rows: Sequence[dict]) -> str:
  """Mean ± sample standard deviation of each model's runs beside the baselines, as GitHub Markdown."""
  head = (
    "| model | runs | sMAPE % | worst run sMAPE % | runs below ridge | ridge sMAPE % | best naive sMAPE % | MAE | RMSE | "
    "s / epoch | training s |"
  )
  lines = [head, "|---" * head.count(" | ") + "|---|"]
  for s in seed_summary(rows):
    lines.append(
      f"| {s['model']} | {s['runs']} | {s['smape']:.3f} ± {s['smape_std']:.3f} | {s['smape_max']:.3f} | "
      f"{s['runs_beating_ridge']} of {s['runs']} | {_number(s['ridge_smape'], 3)} | {_number(s['best_naive_smape'], 3)} | "
      f"{s['mae']:.2f} ± {s['mae_std']:.2f} | {s['rmse']:.2f} ± {s['rmse_std']:.2f} | {s['seconds_per_epoch']:.1f} | "
      f"{s['train_seconds']:.0f} |"
    )
  return "\n".join(lines)


def compare(workdirs: Sequence[str], output_dir: str, *, hours: int = 168) -> list[dict]:
  """Writes ``comparison.json``, ``comparison.md`` and ``comparison.png`` (forecasts vs actual) to ``output_dir``.

  The runs must forecast the same test windows (the same data and lookback).
  With several runs of one model, ``comparison.md`` adds their mean ± standard
  deviation, and the plot shows each model's first run beside the fitted baselines.

  Raises:
    ValueError: a folder holds no finished energy run, or the runs were tested on different data.
  """
  runs = [load_run(w) for w in workdirs]
  actual = runs[0]["predictions"]["actual"]
  for run in runs[1:]:
    if not np.array_equal(run["predictions"]["actual"], actual):
      raise ValueError(
        f"{run['workdir']} and {runs[0]['workdir']} were tested on different data; compare runs of the same files"
      )
  rows = comparison_table(runs)
  several_seeds = len({r["label"] for r in rows}) < len(rows)
  os.makedirs(output_dir, exist_ok=True)
  with open(os.path.join(output_dir, "comparison.json"), "w", encoding="utf-8") as f:
    json.dump({"runs": rows, "models": seed_summary(rows)}, f, indent=2)
  with open(os.path.join(output_dir, "comparison.md"), "w", encoding="utf-8") as f:
    f.write(markdown(rows) + "\n")
    if several_seeds:
      f.write("\nMean ± sample standard deviation over the runs of each model:\n\n" + markdown_seeds(rows) + "\n")
  first_runs = {}
  for run in runs:
    first_runs.setdefault(run["label"], run["predictions"]["forecast"])
  plots.plot_test_forecasts(os.path.join(output_dir, "comparison.png"), runs[0]["predictions"], first_runs, hours=hours)
  return rows
