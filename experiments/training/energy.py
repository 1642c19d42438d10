"""Hourly series in the Kaggle "Hourly Energy Consumption" CSV format, cut into lookback windows.

Follows the FloydHub GRU post ("Gated Recurrent Unit (GRU) With PyTorch"): each
file gives the features load, hour, day of week, month and day of year; each
file is min-max scaled on its own (or standardized, ``scaling="standard"``), the
scalers fitted on its training part only (the post fitted them on the whole file,
test part included); a window of
``lookback`` hours predicts the load of the next hour; the last
``test_fraction`` of each file's windows is its test set.

Windows are gathered on demand from one array of all files' rows, so a
million-row data set costs its rows, not ``lookback`` copies of them.

Example:

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "X_hourly.csv")
>>> with open(path, "w") as f:
...   _ = f.write("Datetime,X_MW\\n" + "".join(
...       f"2020-01-{1 + h // 24:02d} {h % 24:02d}:00:00,{100 + h}\\n" for h in range(48)))
>>> data = load_energy([path], lookback=6, test_fraction=0.1)
>>> data.num_train, data.num_test
(38, 4)
>>> x, y = data.windows(data.train_ends[:2])
>>> x.shape, y.shape  # [B, T, 5], [B, 1]
((2, 6, 5), (2, 1))
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import glob
import os
from collections.abc import Sequence

import numpy as np

FEATURES = ("load", "hour", "dayofweek", "month", "dayofyear")
# The naive forecasts every model is scored against: the load ``lag`` hours before the target.
NAIVE_LAGS = {"last_hour": 1, "same_hour_yesterday": 24, "same_hour_last_week": 168}


class DataError(ValueError):
  """A data file is missing, malformed or too short for the requested windows."""


def resolve_paths(patterns: Sequence[str]) -> list[str]:
  """Expands paths and glob patterns into a sorted list of existing files.

  Raises:
    DataError: a path does not exist or a pattern matches no file.
  """
  paths = []
  for pattern in patterns:
    if glob.has_magic(pattern):
      matches = sorted(p for p in glob.glob(pattern) if os.path.isfile(p))
      if not matches:
        raise DataError(
          f"no CSV file matches {pattern!r} (looked in {os.path.abspath(os.path.dirname(pattern) or '.')})"
        )
      paths.extend(matches)
    else:
      _check_file(pattern)
      paths.append(pattern)
  return list(dict.fromkeys(paths))  # drop duplicates, keep order


def _check_file(path: str) -> None:
  if os.path.isdir(path):
    raise DataError(
      f"data file {path!r} is a directory; expected a CSV file (or a glob pattern such as {os.path.join(path, '*.csv')!r})"
    )
  if not os.path.isfile(path):
    raise DataError(f"data file {path!r} does not exist (absolute path {os.path.abspath(path)})")


def read_hourly_csv(
  path: str,
  *,
  datetime_column: str = "Datetime",
  value_column: str | None = None,
  column_option: str = "task.value_column=NAME",
):
  """Reads one CSV file of timestamps and values, sorted by time.

  Args:
    path: the CSV file; its header names the columns.
    datetime_column: the timestamp column (ISO 8601, e.g. ``2004-12-31 01:00:00``).
    value_column: the value column; ``None`` picks the single column ending in ``_MW``.
    column_option: the option that names the value column, for the message when none is found.

  Returns:
    ``(times, values)``: lists of ``datetime.datetime`` and a float64 array ``[N]``,
    sorted by time (stable, as the post's ``sort_values``).

  Raises:
    DataError: the file is missing, a directory or not UTF-8, lacks the columns,
      a row cannot be parsed, or the timestamps are not consecutive hours, each
      once (the message names the file and line).
  """
  _check_file(path)
  try:
    with open(path, newline="", encoding="utf-8") as f:
      lines, times, values = _read_rows(f, path, datetime_column, value_column, column_option)
  except UnicodeDecodeError:
    raise DataError(
      f"{path}, line {_first_non_utf8_line(path)}: not UTF-8 text; expected a UTF-8 CSV file (save it as UTF-8)"
    ) from None
  order = sorted(range(len(times)), key=times.__getitem__)
  times, lines = [times[i] for i in order], [lines[i] for i in order]
  _check_hourly(path, times, lines)
  return times, np.asarray(values, np.float64)[order]


def _first_non_utf8_line(path: str) -> int:
  with open(path, "rb") as f:
    for number, raw in enumerate(f, start=1):
      try:
        raw.decode("utf-8")
      except UnicodeDecodeError:
        return number
  return number  # a multi-byte character cut at the end of the file


def _read_rows(f, path: str, datetime_column: str, value_column: str | None, column_option: str):
  """``(line numbers, timestamps, values)`` of the rows of an open CSV file."""
  reader = csv.reader(f)
  header = next(reader, None)
  if header is None:
    raise DataError(f"{path}: the file is empty; expected a header with {datetime_column!r} and a value column")
  header = [h.strip() for h in header]
  if value_column is None:
    candidates = [h for h in header if h.endswith("_MW")]
    if len(candidates) != 1:
      raise DataError(
        f"{path}: expected exactly one column ending in '_MW' to use as the load, found {len(candidates)} "
        f"{candidates} in header {header}; pick the load column with {column_option}"
      )
    value_column = candidates[0]
  missing = [c for c in (datetime_column, value_column) if c not in header]
  if missing:
    raise DataError(f"{path}: missing column(s) {missing}; the header has {header}")
  t_col, v_col = header.index(datetime_column), header.index(value_column)
  lines, times, values = [], [], []
  for row in reader:
    line = reader.line_num
    if not row or all(not cell.strip() for cell in row):
      continue  # blank lines, e.g. at the end of a file
    try:
      stamp = datetime.datetime.fromisoformat(row[t_col].strip())
      value = float(row[v_col])
    except (ValueError, IndexError):
      raise DataError(
        f"{path}, line {line}: cannot parse {row!r}; expected an ISO timestamp in column "
        f"{datetime_column!r} and a number in column {value_column!r}"
      ) from None
    if not np.isfinite(value):
      raise DataError(f"{path}, line {line}: value {row[v_col]!r} in column {value_column!r} is not a finite number")
    lines.append(line)
    times.append(stamp)
    values.append(value)
  return lines, times, values


def _check_hourly(path: str, times: Sequence[datetime.datetime], lines: Sequence[int]) -> None:
  """Rule: sorted by time, the rows must be consecutive hours, each once; no gap is filled in silently."""
  hour = datetime.timedelta(hours=1)
  for i in range(1, len(times)):
    step = times[i] - times[i - 1]
    if step == datetime.timedelta(0):
      raise DataError(
        f"{path}, line {lines[i]}: timestamp {times[i]} is duplicated (also on line {lines[i - 1]}); "
        "expected each hour once (keep one row per hour, e.g. drop the repeated hour of a daylight-saving change)"
      )
    if step != hour:
      raise DataError(
        f"{path}, line {lines[i]}: timestamp {times[i]} follows {times[i - 1]} (line {lines[i - 1]}), a gap of {step}; "
        "expected consecutive hours (fill the missing hours, e.g. by interpolation, before training)"
      )


def time_features(times: Sequence[datetime.datetime]) -> np.ndarray:
  """Hour (0-23), day of week (Monday 0), month (1-12), day of year (1-366): ``[N, 4]`` float64."""
  return np.array([(t.hour, t.weekday(), t.month, t.timetuple().tm_yday) for t in times], np.float64).reshape(-1, 4)


def feature_columns(times: Sequence[datetime.datetime], load: np.ndarray, features: Sequence[str]) -> np.ndarray:
  """The unscaled input columns ``[N, I]`` float64 named by ``features`` (from :data:`FEATURES`)."""
  columns = np.concatenate([np.asarray(load, np.float64)[:, None], time_features(times)], axis=1)  # [N, 5]
  return columns[:, [FEATURES.index(name) for name in features]]


def split_point(num_rows: int, lookback: int, test_fraction: float, path: str = "<series>") -> int:
  """Number of training windows of a series; the rest up to ``num_rows - lookback`` are test windows.

  Raises:
    DataError: the series is too short for one training and one test window.
  """
  if lookback >= num_rows:
    raise DataError(
      f"{path}: lookback {lookback} is longer than the series ({num_rows} rows); use a smaller task.lookback"
    )
  num_windows = num_rows - lookback
  num_test = int(test_fraction * num_windows)  # the post's int(0.1 * len(inputs))
  if num_test < 1 or num_windows - num_test < 1:
    raise DataError(
      f"{path}: {num_rows} rows give {num_windows} windows of lookback {lookback}, too few to split "
      f"{test_fraction:g} of them off as a test set"
    )
  return num_windows - num_test


@dataclasses.dataclass(frozen=True)
class EnergyData:
  """All files' scaled rows, and the windows that train and test on them.

  A window ending at row ``e`` reads rows ``e - lookback .. e - 1`` and
  predicts the load of row ``e``.
  """

  files: tuple[str, ...]  # the CSV files, in order
  lookback: int  # T
  feature_names: tuple[str, ...]  # the columns of `features`, "load" first
  times: np.ndarray  # [N] datetime64[s], the timestamp of each row
  features: np.ndarray  # [N, I] float32, scaled per file (min-max or standard)
  load: np.ndarray  # [N] float64, the load in its original unit
  file_index: np.ndarray  # [N] int32, which file each row comes from
  feature_min: np.ndarray  # [files, I] float64, the scaler of each file's features (min, or mean) ...
  feature_range: (
    np.ndarray
  )  # [files, I] float64, ... x_scaled = (x - min) / range (range, or std); column 0 is the load
  train_ends: np.ndarray  # [N_train] int64, row of each training window's target
  test_ends: np.ndarray  # [N_test] int64, row of each test window's target, file by file

  @property
  def num_train(self) -> int:
    return len(self.train_ends)

  @property
  def num_test(self) -> int:
    return len(self.test_ends)

  def windows(self, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gathers windows: ``ends [B]`` -> inputs ``[B, T, I]`` float32, scaled targets ``[B, 1]`` float32."""
    rows = np.asarray(ends)[:, None] + np.arange(-self.lookback, 0)  # [B, T]
    return self.features[rows], self.features[ends, :1]

  def unscale(self, scaled: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Scaled loads ``[B]`` of the windows ending at ``ends [B]`` -> original units ``[B]`` float64."""
    f = self.file_index[ends]
    return np.asarray(scaled, np.float64) * self.feature_range[f, 0] + self.feature_min[f, 0]

  def naive_forecasts(self, ends: np.ndarray) -> dict[str, np.ndarray]:
    """The naive forecasts of :data:`NAIVE_LAGS` for the targets at ``ends [B]``: name -> ``[B]`` float64.

    A forecast whose lag reaches back before the start of a target's file
    (a series shorter than the lag plus its training part) is left out.
    """
    ends = np.asarray(ends)
    file_start = np.searchsorted(self.file_index, self.file_index[ends])  # [B], first row of each target's file
    return {name: self.load[ends - lag] for name, lag in NAIVE_LAGS.items() if np.all(ends - lag >= file_start)}


SCALINGS = ("minmax", "standard")


def fit_scaler(columns: np.ndarray, fit_rows: int, scaling: str = "minmax") -> tuple[np.ndarray, np.ndarray]:
  """``(offset [I], scale [I])`` so that ``(x - offset) / scale`` maps the first ``fit_rows`` rows of ``columns [N, I]``.

  ``minmax``: to [0, 1] (min and range, the post's MinMaxScaler); ``standard``: to zero mean and unit
  variance (mean and standard deviation).

  Raises:
    ValueError: an unknown ``scaling``.
  """
  fit = columns[:fit_rows]
  if scaling == "minmax":
    low, span = fit.min(axis=0), fit.max(axis=0) - fit.min(axis=0)
  elif scaling == "standard":
    low, span = fit.mean(axis=0), fit.std(axis=0)
  else:
    raise ValueError(f"unknown scaling {scaling!r}; expected one of {SCALINGS}")
  # A constant column (e.g. month in a series shorter than a month) keeps its
  # offset and is not divided by zero, as scikit-learn's scalers do.
  return low, np.where(span > 0, span, 1.0)


def load_energy(
  paths: Sequence[str],
  *,
  lookback: int = 90,
  test_fraction: float = 0.1,
  datetime_column: str = "Datetime",
  value_column: str | None = None,
  features: Sequence[str] = FEATURES,
  scaling: str = "minmax",
) -> EnergyData:
  """Reads, featurizes, scales and windows one or several hourly CSV files.

  Args:
    paths: CSV files (already resolved, see :func:`resolve_paths`).
    lookback: T, hours of input per window.
    test_fraction: share of each file's windows (its last ones) held out for testing.
    datetime_column: the timestamp column.
    value_column: the load column; ``None``: the single ``*_MW`` column.
    features: the input columns, ``"load"`` first, from :data:`FEATURES`
      (the FloydHub GRU post uses all five).
    scaling: ``"minmax"`` (the post's) or ``"standard"``, see :func:`fit_scaler`.

  Returns:
    An :class:`EnergyData`.

  Raises:
    DataError: a missing or malformed file, or a series too short for ``lookback``.
  """
  if not paths:
    raise DataError("no data files given")
  features = tuple(features)
  if not features or features[0] != "load" or not set(features) <= set(FEATURES) or len(set(features)) != len(features):
    raise ValueError(f"features must start with 'load' and name distinct columns of {FEATURES}, got {features}")
  if scaling not in SCALINGS:
    raise ValueError(f"unknown scaling {scaling!r}; expected one of {SCALINGS}")
  feature_rows, stamps, loads, file_index, mins, ranges, train_ends, test_ends = ([] for _ in range(8))
  offset = 0
  for i, path in enumerate(paths):
    times, load = read_hourly_csv(path, datetime_column=datetime_column, value_column=value_column)
    num_rows = len(load)
    num_train = split_point(num_rows, lookback, test_fraction, path)
    columns = feature_columns(times, load, features)  # [N_i, I]
    fit_rows = lookback + num_train  # every row that a training window reads or predicts
    low, span = fit_scaler(columns, fit_rows, scaling)
    feature_rows.append(((columns - low) / span).astype(np.float32))
    stamps.append(np.array(times, "datetime64[s]"))
    loads.append(load)
    file_index.append(np.full(num_rows, i, np.int32))
    mins.append(low)
    ranges.append(span)
    ends = offset + np.arange(lookback, num_rows, dtype=np.int64)
    train_ends.append(ends[:num_train])
    test_ends.append(ends[num_train:])
    offset += num_rows
  return EnergyData(
    files=tuple(paths),
    lookback=lookback,
    feature_names=features,
    times=np.concatenate(stamps),
    features=np.concatenate(feature_rows),
    load=np.concatenate(loads),
    file_index=np.concatenate(file_index),
    feature_min=np.stack(mins),
    feature_range=np.stack(ranges),
    train_ends=np.concatenate(train_ends),
    test_ends=np.concatenate(test_ends),
  )
