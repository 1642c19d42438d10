"""PNG plots of a run: loss curves and each task's result (matplotlib, no display needed).

Example:

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "loss.png")
>>> plot_losses(path, [(1, 0.5), (2, 0.25)], [(2, 0.3)])
>>> os.path.getsize(path) > 0
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and CI
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np


def plot_losses(path: str, train: Sequence[tuple[int, float]], test: Sequence[tuple[int, float]], *, title: str = "") -> None:
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


def plot_forecast(path: str, actual: np.ndarray, forecasts: Mapping[str, np.ndarray], *, title: str = "") -> None:
  """Forecasts ``[N]`` against the actual series ``[N]``, hour by hour."""
  fig, ax = plt.subplots(figsize=(10, 4))
  ax.plot(actual, color="black", lw=1.5, label="actual")
  for label, values in forecasts.items():
    ax.plot(values, lw=1, label=label)
  ax.set_xlabel("test hour")
  ax.set_title(title)
  ax.legend()
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


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
