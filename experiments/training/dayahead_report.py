"""How day-ahead quantile forecasts are scored and written: metrics per lead and overall, the CSV, the plots.

Example:

>>> import numpy as np
>>> actual = np.array([[100.0, 200.0]])  # [N, F]
>>> q = np.stack([actual - 10, actual + 5, actual + 10], axis=-1)  # [N, F, Q]
>>> s = score(q, actual, (0.1, 0.5, 0.9))
>>> round(s["smape"], 3), s["mae"], s["coverage_80"], [round(v, 3) for v in s["by_horizon"]]
(3.674, 5.0, 100.0, [4.878, 2.469])
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from collections.abc import Sequence
from typing import IO

import numpy as np

from training import metrics
from training import plots
from training import quantiles

# The metrics of each baseline kept in summary.json (the network's own test section has them all).
BASELINE_KEYS = ("smape", "mae", "rmse", "pinball")


def score(q: np.ndarray, actual: np.ndarray, levels: Sequence[float]) -> dict:
  """The metrics of quantile forecasts ``[N, F, Q]`` against ``actual [N, F]``, in the unit of the series.

  Returns:
    ``smape``, ``mae``, ``rmse`` of the median; ``pinball`` (mean over leads and levels); ``coverage_<P>`` and
    ``width_<P>`` of the outermost levels' interval (:func:`training.quantiles.interval_metrics`);
    ``by_horizon``: the median's sMAPE per lead ``[F]``; ``by_horizon_pinball``: the pinball loss per lead.
  """
  q, actual = np.asarray(q, np.float64), np.asarray(actual, np.float64)
  median = q[..., quantiles.median_index(levels)]
  flat_q, flat_y = q.reshape(-1, len(levels)), actual.reshape(-1)
  result = {
    **metrics.forecast_metrics(median.reshape(-1), flat_y),
    "pinball": quantiles.pinball(flat_q, flat_y, levels),
    **quantiles.interval_metrics(flat_q, flat_y, levels),
    "by_horizon": [metrics.smape(median[:, f], actual[:, f]) for f in range(actual.shape[1])],
    "by_horizon_pinball": [quantiles.pinball(q[:, f], actual[:, f], levels) for f in range(actual.shape[1])],
  }
  return result


def evaluate_forecasts(q: np.ndarray, actual: np.ndarray, baselines: Mapping[str, np.ndarray], levels) -> dict:
  """The network's :func:`score`, its skill against the best seasonal naive forecast, and each baseline's.

  ``skill`` is ``1 - MAE / MAE(naive)``, the naive forecast named by ``skill_reference`` (the one of lowest MAE).
  ``baselines``: name -> ``{smape, mae, rmse, pinball, coverage_<P>, by_horizon}``.
  """
  result = score(q, actual, levels)
  scored = {name: score(b, actual, levels) for name, b in baselines.items()}
  interval = [k for k in result if k.startswith("coverage_")]
  result["baselines"] = {
    name: {k: s[k] for k in (*BASELINE_KEYS, *interval, "by_horizon")} for name, s in scored.items()
  }
  naive = {name: s["mae"] for name, s in scored.items() if name.startswith("same_hour")}
  if naive:
    reference = min(naive, key=naive.get)
    result["skill"] = 1.0 - result["mae"] / naive[reference] if naive[reference] > 0 else None
    result["skill_reference"] = reference
  return result


def comparison_line(model: str, test: dict) -> str:
  """One line: the network's median sMAPE, pinball loss and coverage beside each baseline's."""
  interval = next((k for k in test if k.startswith("coverage_")), None)

  def part(s):
    return f"sMAPE {s['smape']:.2f}%, pinball {s['pinball']:.2f}" + (
      f", {interval} {s[interval]:.0f}%" if interval else ""
    )

  others = "; ".join(f"{name.replace('_', ' ')}: {part(s)}" for name, s in test["baselines"].items())
  return f"{model.upper()} day-ahead {part(test)}" + (f" vs {others}" if others else "")


def write_forecasts(
  f: IO[str],
  issue_times: np.ndarray,
  target_times: np.ndarray,
  actual: np.ndarray | None,
  q: np.ndarray,
  levels: Sequence[float],
) -> None:
  """Writes every scored forecast as a row ``issue_time, target_time, lead, [actual,] q<level>...``.

  Args:
    f: the CSV file, open for writing as text with ``newline=""`` (the caller writes it whole or not at all).
    issue_times: ``[N]`` datetime64.
    target_times: ``[N, F]`` datetime64.
    actual: ``[N, F]``, or ``None`` for forecasts of hours not yet seen.
    q: ``[N, F, Q]``.
    levels: the ``Q`` levels, naming the columns ``q0.1`` ...
  """
  writer = csv.writer(f)
  writer.writerow(
    ["issue_time", "target_time", "lead", *(["actual"] if actual is not None else []), *(f"q{x:g}" for x in levels)]
  )
  for i in range(len(issue_times)):
    issued = str(issue_times[i]).replace("T", " ")
    for lead in range(q.shape[1]):
      values = ([f"{actual[i, lead]:.6g}"] if actual is not None else []) + [f"{v:.6g}" for v in q[i, lead]]
      writer.writerow([issued, str(target_times[i, lead]).replace("T", " "), lead + 1, *values])


def plot_fan(
  path: str, times: np.ndarray, actual: np.ndarray, q: np.ndarray, levels, ridge: np.ndarray | None, *, title: str
) -> None:
  """A fan chart: actual load, the median, the outermost levels' band and the ridge's median, over ``times [N]``."""
  fig, ax = plots.plt.subplots(figsize=(11, 4))
  m = quantiles.median_index(levels)
  ax.fill_between(
    times, q[:, 0], q[:, -1], color="tab:blue", alpha=0.25, label=f"{quantiles.interval_name(levels)}% interval"
  )
  ax.plot(times, actual, color="black", lw=1.2, label="actual")
  ax.plot(times, q[:, m], color="tab:blue", lw=1.2, label="median")
  if ridge is not None:
    ax.plot(times, ridge, color="tab:orange", lw=1, ls="--", label="ridge per lead")
  ax.set_ylabel("MW")
  ax.set_title(title)
  ax.legend(loc="upper right", fontsize=8)
  ax.grid(alpha=0.3)
  fig.autofmt_xdate()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plots.plt.close(fig)


def plot_by_lead(path: str, test: dict, *, title: str) -> None:
  """The median's sMAPE per lead time, the network beside every baseline."""
  fig, ax = plots.plt.subplots(figsize=(7, 4))
  leads = np.arange(1, len(test["by_horizon"]) + 1)
  ax.plot(leads, test["by_horizon"], "o-", label="model", lw=2)
  for name, s in test["baselines"].items():
    ax.plot(leads, s["by_horizon"], ".--", label=name.replace("_", " "))
  ax.set_xlabel("lead time (hours after the first target hour, 1 = 00:00-01:00)")
  ax.set_ylabel("test sMAPE (%)")
  ax.set_title(title)
  ax.legend(fontsize=8)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plots.plt.close(fig)


def save_result(workdir: str, data, q: np.ndarray, baselines: Mapping[str, np.ndarray], levels, *, days: int) -> None:
  """Writes ``test_forecasts.csv``, ``test_predictions.npz``, ``forecast.png`` (the fan chart) and ``by_lead.png``.

  Args:
    workdir: the folder (the trainer's staging folder: each file lands whole or not at all).
    data: the :class:`training.dayahead.DayAheadData`.
    q: the network's quantiles of the test issues ``[N_test, F, Q]``, original unit.
    baselines: name -> ``[N_test, F, Q]``.
    levels: the quantile levels.
    days: the test issues of the first file shown in the fan chart.
  """
  origins = data.test_origins
  rows = data.target_rows(origins)
  actual = data.load[rows]
  with open(os.path.join(workdir, "test_forecasts.csv"), "w", newline="", encoding="utf-8") as f:
    write_forecasts(f, data.issue_times(origins), data.times[rows], actual, q, levels)
  np.savez(
    os.path.join(workdir, "test_predictions.npz"),
    quantiles=q,
    levels=np.asarray(levels),
    actual=actual,
    issue_time=data.issue_times(origins),
    target_time=data.times[rows],
    file_index=data.file_index[origins],
    files=np.array(data.files),
    **{f"baseline_{name}": b for name, b in baselines.items()},
  )
  first = np.flatnonzero(data.file_index[origins] == data.file_index[origins[0]])[:days]
  m, day = quantiles.median_index(levels), min(data.horizon, 24)  # daily issues: their first days tile the time axis
  plot_fan(
    os.path.join(workdir, "forecast.png"),
    data.times[rows[first, :day]].reshape(-1),
    actual[first, :day].reshape(-1),
    q[first, :day].reshape(-1, len(levels)),
    levels,
    baselines["ridge"][first, :day, m].reshape(-1) if "ridge" in baselines else None,
    title=f"{os.path.basename(data.files[0])}: day-ahead forecasts of the first {len(first)} test days",
  )
  test = evaluate_forecasts(q, actual, baselines, levels)
  plot_by_lead(os.path.join(workdir, "by_lead.png"), test, title="day-ahead test sMAPE by lead time")
