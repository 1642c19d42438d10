"""PNG plots of a run: loss curves and each task's result (matplotlib, no display needed).

Example:

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "loss.png")
>>> plot_losses(path, [(1, 0.5), (2, 0.25)], [(2, 0.3)])
>>> os.path.getsize(path) > 0
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and CI
import matplotlib.dates as mdates  # pylint: disable=g-import-not-at-top
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from training import metrics

_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


def plot_losses(
  path: str, train: Sequence[tuple[int, float]], test: Sequence[tuple[int, float]], *, title: str = ""
) -> None:
  """Training and test loss against the step, log scale."""
  fig, ax = plt.subplots(figsize=(7, 4))
  for points, label, style in ((train, "train", "-"), (test, "test", "o-")):
    if points:
      steps, values = zip(*points)
      ax.plot(steps, values, style, label=label)
  ax.set_yscale("log")
  ax.set_xlabel("step")
  ax.set_ylabel("loss")
  ax.set_title(title)
  ax.legend()
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_forecast(
  path: str,
  times: np.ndarray,
  actual: np.ndarray,
  forecasts: Mapping[str, np.ndarray],
  *,
  title: str = "",
  unit: str = "MW",
) -> None:
  """Forecasts ``[N]`` against the actual load ``[N]`` over time ``[N]`` (datetime64), and their errors below.

  Legends sit outside the axes so that they never cover the data.
  """
  fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 6), sharex=True, height_ratios=(2, 1))
  top.plot(times, actual, color="black", lw=1.6, label="actual")
  for (label, values), color in zip(forecasts.items(), _COLORS):
    style = "--" if label.startswith("naive") else ":" if label.startswith("baseline") else "-"
    top.plot(times, values, style, color=color, lw=1, label=label)
    bottom.plot(times, values - actual, style, color=color, lw=1, label=label)
  bottom.axhline(0.0, color="black", lw=0.8)
  top.set_ylabel(f"load ({unit})")
  bottom.set_ylabel(f"forecast - actual ({unit})")
  bottom.set_xlabel("time")
  top.set_title(title)
  for ax in (top, bottom):
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9)
    ax.grid(alpha=0.3)
  bottom.xaxis.set_major_formatter(mdates.DateFormatter("%a\n%d %b"))
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_test_forecasts(
  path: str, arrays: Mapping[str, np.ndarray], forecasts: Mapping[str, np.ndarray], *, hours: int
) -> None:
  """The first ``hours`` test hours of the first file: the forecasts ``[N_test]``, the fitted baselines and the best naive forecast.

  Args:
    path: the PNG file.
    arrays: a run's ``test_predictions.npz``: ``actual``, ``time``, ``file_index``, ``files``, the
      ``fitted_<name>`` (ridge, ...) and ``naive_<name>`` forecasts, each ``[N_test]``.
    forecasts: label -> a model's test forecast ``[N_test]``.
    hours: how many test hours to show (168: one week).
  """
  actual = arrays["actual"]
  baselines = {k[len("naive_") :]: arrays[k] for k in arrays if k.startswith("naive_")}
  shown = dict(forecasts)
  shown.update({f"baseline: {k[len('fitted_') :]}": arrays[k] for k in arrays if k.startswith("fitted_")})
  if baselines:  # the best naive forecast over the whole test set
    name = min(baselines, key=lambda k: metrics.smape(baselines[k], actual))
    shown[f"naive: {name.replace('_', ' ')}"] = baselines[name]
  first = np.flatnonzero(arrays["file_index"] == arrays["file_index"][0])[:hours]
  plot_forecast(
    path,
    arrays["time"][first],
    actual[first],
    {k: v[first] for k, v in shown.items()},
    title=f"{os.path.basename(str(arrays['files'][0]))}: first {len(first)} test hours",
  )


def plot_scatter(path: str, target: np.ndarray, prediction: np.ndarray, *, title: str = "") -> None:
  """Predictions against targets with the diagonal."""
  fig, ax = plt.subplots(figsize=(5, 5))
  ax.scatter(target, prediction, s=4, alpha=0.5)
  low, high = float(min(target.min(), prediction.min())), float(max(target.max(), prediction.max()))
  ax.plot([low, high], [low, high], color="black", lw=1)
  ax.set_xlabel("target")
  ax.set_ylabel("prediction")
  ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_confusion(path: str, confusion: np.ndarray, *, title: str = "") -> None:
  """A confusion matrix ``[classes, classes]`` (rows: true class)."""
  fig, ax = plt.subplots(figsize=(5, 5))
  ax.imshow(confusion, cmap="Blues")
  for (i, j), count in np.ndenumerate(confusion):
    if count:
      ax.text(j, i, str(count), ha="center", va="center", fontsize=7)
  ax.set_xlabel("predicted")
  ax.set_ylabel("true")
  ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
