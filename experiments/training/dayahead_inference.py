"""The next day's quantiles from a finished day-ahead run and a CSV of recent load.

Two steps, the first without JAX, as for the one-step forecaster (:mod:`training.inference`):

* :func:`read_issue` reads the CSV (by default the run's first file), picks the issue (the latest hour
  at the run's ``task.issue_hour`` whose lookback the file holds, or the ``issue_time`` asked for) and
  builds its window: the scaled load of the ``T`` hours before the issue, and the calendar (hour,
  weekday, the run's public holidays) of those hours, of the ``G`` gap hours and of the ``F`` target hours;
* :func:`forecast` runs the run's model (:func:`training.inference.load_run`) on it.

Example (``runs/energy_dayahead`` a finished run of ``configs/energy_dayahead.yaml``)::

    files = inference.read_run("runs/energy_dayahead")
    issue = read_issue(files, "recent_load.csv")  # the next day after the file's last hour
    result = forecast(inference.load_run(files), issue)
    write_csv(result, "next_day.csv")  # issue_time, target_time, lead, q0.1, q0.5, q0.9
"""

from __future__ import annotations

import dataclasses
import datetime
import os

import numpy as np

from training import dayahead
from training import dayahead_report
from training import energy
from training import files
from training import inference

HOUR = datetime.timedelta(hours=1)


@dataclasses.dataclass(frozen=True)
class Issue:
  """One day-ahead forecast to make: its window, scaled as the run's model expects it."""

  path: str  # the CSV file read
  issue_time: datetime.datetime  # when the forecast is issued: the end of the last load hour read
  inputs: np.ndarray  # [1, T + G + F, len(dayahead.INPUTS)] float32, the model's window
  target_times: np.ndarray  # [F] datetime64[s], the hours forecast
  file: int  # the index of the run's scaler used (training.inference.scaler_index)
  unread_rows: int  # the file's rows after the issue time, not read


@dataclasses.dataclass(frozen=True)
class DayAheadForecast:
  """The quantiles of one day-ahead issue, in the load's unit."""

  csv_path: str  # the file the load was read from
  issue_time: datetime.datetime
  target_times: np.ndarray  # [F] datetime64[s]
  quantiles: np.ndarray  # [F, Q] float64, non-decreasing along Q
  levels: tuple[float, ...]  # [Q]


def _issue_row(times, issue_hour: int, lookback: int, issue_time: datetime.datetime | None, path: str) -> int:
  """The row the forecast is issued at (rows before it are known): the latest possible, or ``issue_time``'s."""
  span = f"{path} holds {times[0]} .. {times[-1]}"
  if issue_time is None:
    last = len(times)  # an issue right after the file's last hour
    row = last - (times[0] + last * HOUR - datetime.timedelta(hours=issue_hour)).hour
    if row < lookback:
      raise energy.DataError(
        f"{span} ({len(times)} rows): too few for a forecast issued at {issue_hour:02d}:00 (task.issue_hour), "
        f"which reads the {lookback} hours before it (task.lookback); give a longer file"
      )
    return row
  if issue_time.minute or issue_time.second or issue_time.microsecond or issue_time.hour != issue_hour:
    raise energy.DataError(
      f"--issue-time {issue_time}: the run issues its forecasts at {issue_hour:02d}:00 (task.issue_hour); "
      f"give a time at {issue_hour:02d}:00"
    )
  row = round((issue_time - times[0]) / HOUR)
  if not lookback <= row <= len(times):
    raise energy.DataError(
      f"--issue-time {issue_time}: {span}, but the forecast reads the {lookback} hours before it "
      f"(task.lookback), from {issue_time - lookback * HOUR}; give an issue time from "
      f"{times[0] + lookback * HOUR} to {times[-1] + HOUR}"
    )
  return row


def read_issue(
  run: inference.RunFiles | inference.Run,
  csv_path: str | None = None,
  *,
  issue_time: datetime.datetime | None = None,
  value_column: str | None = None,
  datetime_column: str | None = None,
) -> Issue:
  """Reads ``csv_path`` (the run's first file when ``None``) and builds the window of one day-ahead issue, without JAX.

  Args:
    run: a day-ahead run (:func:`training.inference.read_run` or :func:`~training.inference.load_run`).
    csv_path: an hourly CSV file of load in the run's layout, ending at the latest known hour.
    issue_time: when the forecast is issued, at the run's ``task.issue_hour``; ``None``: the latest such
      time the file allows (right after its last hour when that is at the issue hour).
    value_column: the load column, if not the run's ``task.value_column``.
    datetime_column: the timestamp column, if not the run's ``task.datetime_column``.

  Raises:
    training.inference.RunError: ``run`` is not a day-ahead run.
    training.energy.DataError: the file is missing or malformed, lacks the columns, or does not hold the
      lookback before the issue; an ``issue_time`` not at the run's issue hour.
  """
  s, task = run.scaling, run.config.task
  if task.kind != "dayahead":
    raise inference.RunError(f"{run.workdir} is a {task.kind!r} run; read its series with training.inference")
  path = s.files[0] if csv_path is None else csv_path
  times, load = energy.read_hourly_csv(
    path,
    datetime_column=datetime_column or task.datetime_column,
    value_column=value_column or task.value_column,
    column_option="--value-column NAME",
  )
  row = _issue_row(times, s.issue_hour, s.lookback, issue_time, path)
  issued = times[0] + row * HOUR
  timeline = [times[row - s.lookback] + k * HOUR for k in range(s.lookback + s.gap + s.horizon)]
  years = tuple(range(timeline[0].year, timeline[-1].year + 1))
  dates = dayahead.holiday_calendar(s.holidays, s.holidays_subdivision, years) if s.holidays else frozenset()
  file = inference.scaler_index(s.files, path)
  past = s.scale_load(load[row - s.lookback : row], file)[None]  # [1, T]
  inputs = dayahead.assemble(past, dayahead.calendar_columns(timeline, dates)[None])
  targets = np.array(timeline[s.lookback + s.gap :], "datetime64[s]")
  return Issue(path, issued, inputs, targets, file, len(times) - row)


def forecast(run: inference.Run, issue: Issue) -> DayAheadForecast:
  """The quantiles ``[F, Q]`` of one issue, in the load's unit (the run's best checkpoint)."""
  from training import step as step_lib  # pylint: disable=g-import-not-at-top  # JAX loads here

  s = run.scaling
  scaled = np.asarray(step_lib.eval_step(run.variables["params"], issue.inputs, model=run.model))  # [1, F * Q]
  q = s.unscale(scaled.reshape(s.horizon, len(s.levels)), issue.file)
  return DayAheadForecast(issue.path, issue.issue_time, issue.target_times, q, s.levels)


def write_csv(result: DayAheadForecast, out: str, *, force: bool = False) -> None:
  """Writes ``issue_time, target_time, lead, q<level>...`` (one row per target hour) to ``out``, whole or not at all.

  Raises:
    FileExistsError: ``out`` exists and ``force`` is false.
    training.files.DiskFault: the disk is full or the folder may not be written.
  """
  if os.path.exists(out) and not force:
    raise FileExistsError(f"{out} already exists; choose another --out or pass --force to overwrite it")
  issue_times = np.array([result.issue_time], "datetime64[s]")
  with files.atomic_write(out, newline="") as f:
    dayahead_report.write_forecasts(
      f, issue_times, result.target_times[None], None, result.quantiles[None], result.levels
    )
