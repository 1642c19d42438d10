"""Day-ahead load forecasting: the next day's hourly loads, issued once a day, as grid operators forecast them.

A forecast is issued every day at ``issue_hour`` for the ``horizon`` hours from the next midnight on. It
reads the ``lookback`` hours of load up to the issue time, and the calendar of every hour from the first
read hour to the last target hour. Issued at 00:00 (the default), the last known load is the hour
23:00-24:00 of the evening before and there is no gap; issued at 10:00 the evening before, the 14 hours
from 10:00 to midnight are a gap whose load is not known yet.

Rows (hours) of one file, for an issue at 00:00 of day D (``G = (24 - issue_hour) % 24`` gap hours)::

  origin - G - T .. origin - G - 1   the lookback: load and calendar        (T rows, "past")
  origin - G .. origin - 1           the gap: calendar only                 (G rows)
  origin .. origin + F - 1           the targets: calendar only, to predict (F rows, from 00:00 of day D)

A window's inputs are ``[T + G + F, I]``: per row the scaled load (0 where unknown), a known flag (1 in the
lookback), then :data:`CALENDAR`. Training uses every hour as an origin; the test issues forecasts once a
day over the last ``test_days`` days of each file (or its last ``test_fraction``), the training targets all
before them. The load scaler is fitted on the rows before the test.

Example:

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "X_hourly.csv")
>>> with open(path, "w") as f:
...   _ = f.write("Datetime,X_MW\\n" + "".join(
...       f"2020-01-{1 + h // 24:02d} {h % 24:02d}:00:00,{100 + h % 24}\\n" for h in range(24 * 10)))
>>> data = load_dayahead([path], lookback=48, horizon=24, issue_hour=0, test_days=2)
>>> data.num_test, str(data.times[data.test_origins[0]])  # two daily issues, the first for 9 January
(2, '2020-01-09T00:00:00')
>>> x, y = data.windows(data.train_origins[:3])
>>> x.shape, y.shape  # [B, T + G + F, 2 + 10], [B, F]
((3, 72, 12), (3, 24))
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from training import energy

# The calendar columns of every row, known in advance for the target hours too.
CALENDAR = ("hour_sin", "hour_cos", *(f"weekday_{d}" for d in range(7)), "holiday")
INPUTS = ("load", "known", *CALENDAR)  # the columns of a window's rows
DAY = 24
WEEK = 168


class Forecast(NamedTuple):
  """The shape of a day-ahead window, what a model is built for."""

  lookback: int  # T
  gap: int  # G
  horizon: int  # F
  levels: tuple[float, ...]  # the quantile levels [Q]


def gap_hours(issue_hour: int) -> int:
  """G: the hours from the issue time to the next midnight, whose load is not yet known (0 at ``issue_hour`` 0)."""
  return (DAY - issue_hour) % DAY


@functools.cache
def holiday_calendar(country: str, subdivision: str | None, years: tuple[int, ...]) -> frozenset[datetime.date]:
  """The public holidays of ``country`` (ISO 3166 code, optionally a subdivision) in ``years``, from ``holidays``."""
  import holidays  # pylint: disable=g-import-not-at-top  # only day-ahead tasks with a country need it

  return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=list(years)))


def calendar_columns(times: Sequence[datetime.datetime], holiday_dates: frozenset[datetime.date]) -> np.ndarray:
  """The :data:`CALENDAR` columns of each hour ``[N, 10]`` float32: the hour on a circle, the weekday, a holiday."""
  hour = np.array([t.hour for t in times], np.float64)
  weekday = np.array([t.weekday() for t in times])
  holiday = np.array([t.date() in holiday_dates for t in times], np.float64)
  angle = 2 * np.pi * hour / DAY
  return np.concatenate(
    [np.sin(angle)[:, None], np.cos(angle)[:, None], np.eye(7)[weekday], holiday[:, None]], axis=1
  ).astype(np.float32)


def seasonal_lag(period: int, gap: int, leads: np.ndarray) -> np.ndarray:
  """The lag (hours before the target) of the same hour ``period`` hours earlier that is known at issue time.

  Lead ``l`` (1-based) lies ``G + l`` hours after the last known hour, so the latest known hour of the same
  phase is ``period * ceil((G + l) / period)`` hours before the target.
  """
  return period * -(-(gap + np.asarray(leads)) // period)


def assemble(past_load, calendar, xp=np):
  """The window rule: scaled lookback loads ``[B, T]`` and calendar ``[B, T + G + F, C]`` -> inputs ``[B, T + G + F, 2 + C]``.

  Each row holds its scaled load (0 where not known at issue), a known flag (1 in the lookback) and its
  calendar. ``xp`` is ``numpy`` (training, :mod:`training.dayahead_inference`) or ``jax.numpy`` (the
  exported forecaster, :mod:`training.dayahead_export`).
  """
  b, t = past_load.shape
  unknown = xp.zeros((b, calendar.shape[1] - t), past_load.dtype)
  load = xp.concatenate([past_load, unknown], axis=1)
  known = xp.concatenate([xp.ones_like(past_load), unknown], axis=1)
  return xp.concatenate([load[..., None], known[..., None], calendar.astype(past_load.dtype)], axis=-1)


@dataclasses.dataclass(frozen=True)
class DayAheadData:
  """Every file's rows and the day-ahead windows on them (shapes: N rows, F = horizon)."""

  files: tuple[str, ...]
  lookback: int  # T
  gap: int  # G
  horizon: int  # F
  times: np.ndarray  # [N] datetime64[s]
  load: np.ndarray  # [N] float64, original unit
  scaled_load: np.ndarray  # [N] float32, (load - offset) / scale of the row's file
  calendar: np.ndarray  # [N, len(CALENDAR)] float32
  file_index: np.ndarray  # [N] int32
  load_offset: np.ndarray  # [files] float64
  load_scale: np.ndarray  # [files] float64
  train_origins: np.ndarray  # [N_train] int64, the first target row of each training window (every hour)
  test_origins: np.ndarray  # [N_test] int64, the first target row of each daily test issue

  @property
  def num_train(self) -> int:
    return len(self.train_origins)

  @property
  def num_test(self) -> int:
    return len(self.test_origins)

  @property
  def leads(self) -> np.ndarray:
    """``[F]``: 1 .. F, the lead of each target hour counted from the first target hour."""
    return np.arange(1, self.horizon + 1)

  def target_rows(self, origins: np.ndarray) -> np.ndarray:
    """``[B, F]``: the rows of each window's target hours."""
    return np.asarray(origins)[:, None] + np.arange(self.horizon)

  def windows(self, origins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gathers windows: ``origins [B]`` -> inputs ``[B, T + G + F, 2 + C]`` float32, scaled targets ``[B, F]``."""
    origins = np.asarray(origins)
    rows = origins[:, None] + np.arange(-self.gap - self.lookback, self.horizon)  # [B, T + G + F]
    x = assemble(self.scaled_load[rows[:, : self.lookback]], self.calendar[rows])
    return x, self.scaled_load[self.target_rows(origins)]

  def unscale(self, scaled: np.ndarray, origins: np.ndarray) -> np.ndarray:
    """Scaled values ``[B, F, ...]`` of the windows at ``origins [B]`` -> original units, float64."""
    f = self.file_index[np.asarray(origins)]
    shape = (-1,) + (1,) * (np.ndim(scaled) - 1)
    return np.asarray(scaled, np.float64) * self.load_scale[f].reshape(shape) + self.load_offset[f].reshape(shape)

  def issue_times(self, origins: np.ndarray) -> np.ndarray:
    """``[B]`` datetime64: when each forecast is issued (the end of its last known hour)."""
    return self.times[np.asarray(origins) - self.gap]

  def seasonal_naive(self, origins: np.ndarray, period: int) -> np.ndarray:
    """``[B, F]`` float64: each target's load ``period`` hours (or a multiple) earlier, the latest known at issue."""
    return self.load[self.target_rows(origins) - seasonal_lag(period, self.gap, self.leads)]


def split_file(
  times: Sequence[datetime.datetime],
  *,
  lookback: int,
  gap: int,
  horizon: int,
  test_days: int | None,
  test_fraction: float,
  holdout_days: int,
  path: str,
) -> tuple[np.ndarray, np.ndarray]:
  """``(training origins, test origins)`` of one file's rows (0-based within the file).

  Raises:
    energy.DataError: the file is too short for one test issue and one training window.
  """
  n = len(times)
  first = lookback + gap  # the first origin with a full lookback
  midnights = np.array([i for i in range(first, n - horizon + 1) if times[i].hour == 0], np.int64)
  if holdout_days:
    midnights = midnights[: max(0, len(midnights) - holdout_days)]
  count = test_days if test_days is not None else int(test_fraction * len(midnights))
  if count < 1 or len(midnights) < count:
    raise energy.DataError(
      f"{path}: {n} rows leave {len(midnights)} day-ahead issues for lookback {lookback}, gap {gap} and horizon "
      f"{horizon}"
      + (f" after {holdout_days} held-out days" if holdout_days else "")
      + f", too few for {count if count >= 1 else 'one'} test day(s); use a shorter task.lookback or "
      "task.horizon, or a longer series"
    )
  test = midnights[-count:]
  train = np.arange(first, test[0] - horizon + 1, dtype=np.int64)  # every training target before the test
  if len(train) < 1:
    raise energy.DataError(
      f"{path}: no training window is left before the first test day ({times[test[0]]}) with lookback "
      f"{lookback}, gap {gap} and horizon {horizon}; use fewer test days or a longer series"
    )
  return train, test


def load_dayahead(
  paths: Sequence[str],
  *,
  lookback: int = WEEK,
  horizon: int = DAY,
  issue_hour: int = 0,
  test_days: int | None = None,
  test_fraction: float = 0.1,
  holdout_days: int = 0,
  holidays: str | None = None,
  holidays_subdivision: str | None = None,
  datetime_column: str = "Datetime",
  value_column: str | None = None,
  scaling: str = "standard",
) -> DayAheadData:
  """Reads hourly CSV files and cuts them into day-ahead windows (see the module docstring).

  Args:
    paths: CSV files (resolved, see :func:`training.energy.resolve_paths`).
    lookback: T, hours of load read before the issue.
    horizon: F, target hours from the midnight after the issue.
    issue_hour: the hour of the day the forecast is issued, the day before the targets (0: at their midnight).
    test_days: daily test issues at the end of each file; ``None``: the last ``test_fraction`` of them.
    test_fraction: used when ``test_days`` is ``None``.
    holdout_days: days at the end of each file left out entirely (the later folds of a backtest).
    holidays: the country of the public holidays (``holidays`` package code); ``None``: no holiday flag (0).
    holidays_subdivision: the country's subdivision (``ENG`` of ``GB``), or ``None``.
    datetime_column: the timestamp column.
    value_column: the load column; ``None``: the single ``*_MW`` column.
    scaling: the load's scaler, ``standard`` or ``minmax`` (:func:`training.energy.fit_scaler`).

  Raises:
    energy.DataError: a missing or malformed file, or one too short for the windows.
  """
  if not paths:
    raise energy.DataError("no data files given")
  gap = gap_hours(issue_hour)
  parts = {k: [] for k in ("times", "load", "scaled", "calendar", "file", "offset", "scale", "train", "test")}
  offset = 0
  for i, path in enumerate(paths):
    times, load = energy.read_hourly_csv(path, datetime_column=datetime_column, value_column=value_column)
    train, test = split_file(
      times,
      lookback=lookback,
      gap=gap,
      horizon=horizon,
      test_days=test_days,
      test_fraction=test_fraction,
      holdout_days=holdout_days,
      path=path,
    )
    low, span = energy.fit_scaler(load[:, None], int(test[0] - gap), scaling)  # the rows before the first issue
    years = tuple(range(times[0].year, times[-1].year + 1))
    dates = holiday_calendar(holidays, holidays_subdivision, years) if holidays else frozenset()
    parts["times"].append(np.array(times, "datetime64[s]"))
    parts["load"].append(load)
    parts["scaled"].append(((load - low[0]) / span[0]).astype(np.float32))
    parts["calendar"].append(calendar_columns(times, dates))
    parts["file"].append(np.full(len(load), i, np.int32))
    parts["offset"].append(low[0])
    parts["scale"].append(span[0])
    parts["train"].append(offset + train)
    parts["test"].append(offset + test)
    offset += len(load)
  cat = {k: np.concatenate(v) if k not in ("offset", "scale") else np.array(v) for k, v in parts.items()}
  return DayAheadData(
    files=tuple(paths),
    lookback=lookback,
    gap=gap,
    horizon=horizon,
    times=cat["times"],
    load=cat["load"],
    scaled_load=cat["scaled"],
    calendar=cat["calendar"],
    file_index=cat["file"],
    load_offset=cat["offset"],
    load_scale=cat["scale"],
    train_origins=cat["train"],
    test_origins=cat["test"],
  )
