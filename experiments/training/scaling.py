"""A run's input scalers, ``scaling.json``: fitted on each file's training part, read again to forecast new data."""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from training import files


def save_scaling(data, path: str) -> None:
  """Writes the fitted scalers of ``data`` (a :class:`training.energy.EnergyData`, one per file) as JSON, whole or not at all."""
  scaling = {
    "files": list(data.files),
    "feature_names": list(data.feature_names),
    "lookback": data.lookback,
    "feature_min": data.feature_min.tolist(),
    "feature_range": data.feature_range.tolist(),
  }
  with files.atomic_write(path) as f:
    json.dump(scaling, f, indent=2)


@dataclasses.dataclass(frozen=True)
class Scaling:
  """The min-max scalers a run fitted on each of its files' training parts."""

  files: tuple[str, ...]  # the run's CSV files, in order
  feature_names: tuple[str, ...]  # the input columns, "load" first
  lookback: int  # T
  feature_min: np.ndarray  # [files, I] float64
  feature_range: np.ndarray  # [files, I] float64

  def scale(self, columns: np.ndarray, file: int) -> np.ndarray:
    """Unscaled columns ``[N, I]`` -> the model's inputs ``[N, I]`` float32, with the scaler of file ``file``."""
    return ((columns - self.feature_min[file]) / self.feature_range[file]).astype(np.float32)

  def unscale_load(self, scaled: np.ndarray, file: int) -> np.ndarray:
    """Scaled loads ``[B]`` -> original units ``[B]`` float64."""
    return np.asarray(scaled, np.float64) * self.feature_range[file, 0] + self.feature_min[file, 0]


@dataclasses.dataclass(frozen=True)
class DayAheadScaling:
  """What a day-ahead run fitted and was built for: its load scalers (one per file) and its windows' shape."""

  files: tuple[str, ...]  # the run's CSV files, in order
  lookback: int  # T
  gap: int  # G
  horizon: int  # F
  issue_hour: int  # the hour of the day its forecasts are issued
  levels: tuple[float, ...]  # the quantile levels [Q]
  holidays: str | None  # the country of the holiday flag, or None
  holidays_subdivision: str | None
  load_offset: np.ndarray  # [files] float64: scaled = (load - offset) / scale
  load_scale: np.ndarray  # [files] float64

  def scale_load(self, load: np.ndarray, file: int) -> np.ndarray:
    """Loads in the original unit -> the model's scaled loads, float32, with the scaler of file ``file``."""
    return ((np.asarray(load, np.float64) - self.load_offset[file]) / self.load_scale[file]).astype(np.float32)

  def unscale(self, scaled: np.ndarray, file: int) -> np.ndarray:
    """Scaled values (quantiles ``[..., F, Q]``) -> original units, float64."""
    return np.asarray(scaled, np.float64) * self.load_scale[file] + self.load_offset[file]


def load_scaling(path: str) -> Scaling | DayAheadScaling:
  """Reads a file written by :func:`save_scaling` or :func:`save_dayahead_scaling`."""
  with open(path, encoding="utf-8") as f:
    raw = json.load(f)
  if raw.get("task") == "dayahead":
    return DayAheadScaling(
      files=tuple(raw["files"]),
      lookback=int(raw["lookback"]),
      gap=int(raw["gap"]),
      horizon=int(raw["horizon"]),
      issue_hour=int(raw["issue_hour"]),
      levels=tuple(float(x) for x in raw["quantiles"]),
      holidays=raw["holidays"],
      holidays_subdivision=raw["holidays_subdivision"],
      load_offset=np.asarray(raw["load_offset"], np.float64),
      load_scale=np.asarray(raw["load_scale"], np.float64),
    )
  return Scaling(
    files=tuple(raw["files"]),
    feature_names=tuple(raw["feature_names"]),
    lookback=int(raw["lookback"]),
    feature_min=np.asarray(raw["feature_min"], np.float64),
    feature_range=np.asarray(raw["feature_range"], np.float64),
  )


def save_dayahead_scaling(data, config, path: str) -> None:
  """Writes what a day-ahead run needs to forecast new data: its load scalers (one per file) and window shape.

  Args:
    data: the run's :class:`training.dayahead.DayAheadData`.
    config: its ``task`` section (:class:`training.schema.DayAheadTask`).
    path: the JSON file, written whole or not at all.
  """
  scaling = {
    "task": "dayahead",
    "files": list(data.files),
    "lookback": data.lookback,
    "gap": data.gap,
    "horizon": data.horizon,
    "issue_hour": config.issue_hour,
    "quantiles": list(config.quantiles),
    "holidays": config.holidays,
    "holidays_subdivision": config.holidays_subdivision,
    "load_offset": data.load_offset.tolist(),
    "load_scale": data.load_scale.tolist(),
  }
  with files.atomic_write(path) as f:
    json.dump(scaling, f, indent=2)
