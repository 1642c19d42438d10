"""Forecasts with a finished energy run: its best checkpoint, its config and its fitted scaling.

A day-ahead run's folder is read and loaded by the same :func:`read_run` and :func:`load_run`; its
forecasts of the next day are made by :mod:`training.dayahead_inference`.

Two steps, the first without JAX, so that a wrong folder or file is named in a second:

* :func:`read_run` checks a run folder's files (config, scaling, summary,
  checkpoints) and :func:`read_series` reads and scales the CSV file to
  forecast (by default the run's own test part);
* :func:`load_run` restores the model's parameters, and :func:`forecast`
  forecasts every window of the series.

Example (``workdir`` a finished energy run, e.g. ``runs/energy_default``)::

    run = load_run("runs/energy_default")
    result = forecast(run)  # the run's test part
    write_csv(result, "forecast.csv")
"""

from __future__ import annotations

import csv
import dataclasses
import os
from typing import Any

import numpy as np

from training import energy
from training import files
from training import run_folder
from training import scaling as scaling_lib
from training import schema
from training.config_files import ConfigError
from training.config_files import load_config

KINDS = ("energy", "dayahead")  # the tasks whose runs forecast load


class RunError(ValueError):
  """A run folder cannot be used for forecasting."""


@dataclasses.dataclass(frozen=True)
class RunFiles:
  """A finished energy (or day-ahead) run's files, read and checked (no JAX needed)."""

  workdir: str  # the run folder
  config: schema.TrainConfig  # the run's config.yaml
  scaling: scaling_lib.Scaling | scaling_lib.DayAheadScaling  # fitted on the training part of each file
  checkpoints: str  # the folder of its orbax checkpoints


@dataclasses.dataclass(frozen=True)
class Run:
  """A trained energy model, ready to forecast."""

  workdir: str  # the run folder
  model: Any  # training.models.SequenceModel (training.forecaster.DayAheadModel for a day-ahead run)
  variables: dict  # {"params": ...} of the best checkpoint
  config: schema.TrainConfig  # the run's config.yaml
  scaling: scaling_lib.Scaling | scaling_lib.DayAheadScaling  # fitted on the training part of each file
  step: int  # the training step of the checkpoint


@dataclasses.dataclass(frozen=True)
class Series:
  """One CSV file's windows to forecast, scaled as the run's model expects them."""

  path: str  # the file
  features: np.ndarray  # [N_rows, I] float32, scaled
  ends: np.ndarray  # [N] int64, the row each forecast is for
  times: np.ndarray  # [N] datetime64[s], the hour of each forecast
  actual: np.ndarray  # [N] float64, the load of that hour
  file: int  # the index of the run's scaler used


@dataclasses.dataclass(frozen=True)
class Forecast:
  """Next-hour forecasts of one file's windows."""

  csv_path: str  # the file forecast
  times: np.ndarray  # [N] datetime64[s], the hour each forecast is for
  actual: np.ndarray  # [N] float64, the load of that hour
  forecast: np.ndarray  # [N] float64, the model's forecast


def scaler_index(run_files: tuple[str, ...], path: str) -> int:
  """Which of a run's scalers scales ``path``: that of the same file, or else that of the run's first file."""
  same = [i for i, f in enumerate(run_files) if os.path.abspath(f) == os.path.abspath(path)]
  return same[0] if same else 0


def read_run(workdir: str) -> RunFiles:
  """Reads and checks the files of a finished energy or day-ahead run folder, without loading JAX.

  Raises:
    RunError: the folder does not exist, is not a finished energy run (no
      config, scaling, summary or checkpoint), or one of its files cannot be read.
  """
  if not os.path.isdir(workdir):
    raise RunError(
      f"run folder {workdir} does not exist; give the --workdir of a finished "
      "`python experiments/train.py` run of an energy config"
    )
  paths = {name: os.path.join(workdir, name) for name in ("config.yaml", "scaling.json", "summary.json", "checkpoints")}
  missing = [name for name, path in paths.items() if not os.path.exists(path)]
  if missing:
    raise RunError(
      f"{workdir} is not a finished energy run: {', '.join(missing)} missing; expected the folder "
      "of a finished `python experiments/train.py` run of an energy config"
    )
  try:
    config = load_config(schema.TrainConfig, paths["config.yaml"])
  except ConfigError as e:
    raise RunError(f"{workdir}: its config.yaml cannot be used: {e}") from None
  if config.task.kind not in KINDS:
    raise RunError(f"{workdir} is a {config.task.kind!r} run; only {' and '.join(KINDS)} runs forecast load")
  try:
    scaling = scaling_lib.load_scaling(paths["scaling.json"])
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise RunError(
      f"{paths['scaling.json']} cannot be read ({type(e).__name__}: {e}); "
      "rerun the training command on the folder to write it again"
    ) from None
  if isinstance(scaling, scaling_lib.DayAheadScaling) != (config.task.kind == "dayahead"):
    raise RunError(
      f"{paths['scaling.json']} is not the scaling of a {config.task.kind!r} run; "
      "rerun the training command on the folder to write it again"
    )
  if not any(run_folder.STEP_FOLDER.fullmatch(name) for name in os.listdir(paths["checkpoints"])):
    raise RunError(f"{workdir} has no checkpoint in {paths['checkpoints']}; train it first")
  return RunFiles(workdir, config, scaling, paths["checkpoints"])


def load_run(workdir: str | RunFiles) -> Run:
  """Loads a finished energy run folder: model, best-checkpoint parameters, config and scaling.

  Only the parameters are read (no optimizer is built); checkpoints written by
  earlier versions of the trainer load the same way.

  Raises:
    RunError: see :func:`read_run`; or no checkpoint of the folder can be read.
  """
  # JAX and orbax load here, after the cheap checks of read_run.
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from training import checkpoint  # pylint: disable=g-import-not-at-top
  from training import step as step_lib  # pylint: disable=g-import-not-at-top

  found = workdir if isinstance(workdir, RunFiles) else read_run(workdir)
  if isinstance(found.scaling, scaling_lib.DayAheadScaling):
    from training import dayahead  # pylint: disable=g-import-not-at-top

    s = found.scaling
    shape = dayahead.Forecast(s.lookback, s.gap, s.horizon, s.levels)
    model = step_lib.create_model(found.config.model, outputs=s.horizon * len(s.levels), forecast=shape)
    sample = jnp.zeros((1, s.lookback + s.gap + s.horizon, len(dayahead.INPUTS)), jnp.float32)  # [B, T + G + F, I]
  else:
    model = step_lib.create_model(found.config.model, outputs=1)
    sample = jnp.zeros((1, found.scaling.lookback, len(found.scaling.feature_names)), jnp.float32)  # [B, T, I]
  like = jax.eval_shape(lambda: model.init(jax.random.key(0), sample))["params"]
  try:
    step = checkpoint.best_step(found.checkpoints)
    if step is None:
      raise RunError(f"{found.workdir} has no checkpoint in {found.checkpoints}; train it first")
    params = checkpoint.restore_params(found.checkpoints, step, like)
  except checkpoint.CheckpointError as e:
    raise RunError(str(e)) from None
  return Run(found.workdir, model, {"params": params}, found.config, found.scaling, step)


def read_series(
  run: RunFiles | Run,
  csv_path: str | None = None,
  *,
  value_column: str | None = None,
  datetime_column: str | None = None,
) -> Series:
  """Reads and scales the windows of ``csv_path`` (the run's first file's test part when ``None``), without JAX.

  A file of the run is scaled with its own scaler; any other file with the
  scaler of the run's first file.

  Args:
    run: the run (:func:`read_run` or :func:`load_run`).
    csv_path: an hourly CSV file in the run's layout.
    value_column: the load column, if not the run's ``task.value_column``.
    datetime_column: the timestamp column, if not the run's ``task.datetime_column``.

  Raises:
    training.energy.DataError: the file is missing or malformed, lacks the columns,
      or is too short for one window.
  """
  if isinstance(run.scaling, scaling_lib.DayAheadScaling):
    raise RunError(f"{run.workdir} is a day-ahead run; forecast it with training.dayahead_inference.read_issue")
  task = run.config.task
  own = csv_path is None
  path = run.scaling.files[0] if own else csv_path
  times, load = energy.read_hourly_csv(
    path,
    datetime_column=datetime_column or task.datetime_column,
    value_column=value_column or task.value_column,
    column_option="--value-column NAME",
  )
  lookback = run.scaling.lookback
  if len(load) <= lookback:
    raise energy.DataError(
      f"{path}: {len(load)} rows, too few for one forecast; the run needs more than "
      f"task.lookback = {lookback} consecutive hours"
    )
  file = scaler_index(run.scaling.files, path)
  features = run.scaling.scale(energy.feature_columns(times, load, run.scaling.feature_names), file)  # [N_rows, I]
  first = lookback + energy.split_point(len(load), lookback, task.test_fraction, path) if own else lookback
  ends = np.arange(first, len(load))  # [N]
  return Series(path, features, ends, np.array(times, "datetime64[s]")[ends], load[ends], file)


def forecast(run: Run, csv_path: str | Series | None = None, *, batch_size: int = 1024) -> Forecast:
  """Forecasts every window of ``csv_path``: a CSV file, a :class:`Series` read from one, or ``None`` (the run's test part).

  Raises:
    training.energy.DataError: see :func:`read_series`.
  """
  import jax  # pylint: disable=g-import-not-at-top

  from training import step as step_lib  # pylint: disable=g-import-not-at-top

  series = csv_path if isinstance(csv_path, Series) else read_series(run, csv_path)
  lookback = run.scaling.lookback
  predict = jax.jit(lambda x: step_lib.eval_step(run.variables["params"], x, model=run.model))
  scaled = []
  for start in range(0, len(series.ends), batch_size):
    rows = series.ends[start : start + batch_size, None] + np.arange(-lookback, 0)  # [B, T]
    scaled.append(np.asarray(predict(series.features[rows]))[:, 0])
  return Forecast(
    series.path, series.times, series.actual, run.scaling.unscale_load(np.concatenate(scaled), series.file)
  )


def write_csv(result: Forecast, out: str, *, force: bool = False) -> None:
  """Writes ``Datetime,actual,forecast`` rows to ``out``, whole or not at all.

  The rows go to a temporary file beside ``out`` that is renamed onto it when
  complete, so ``out`` is never a half file, whenever the process is stopped.

  Raises:
    FileExistsError: ``out`` exists and ``force`` is false.
    training.files.DiskFault: the disk is full or the folder may not be written.
  """
  if os.path.exists(out) and not force:
    raise FileExistsError(f"{out} already exists; choose another --out or pass --force to overwrite it")
  with files.atomic_write(out, newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["Datetime", "actual", "forecast"])
    for t, a, p in zip(result.times, result.actual, result.forecast):
      writer.writerow([str(t).replace("T", " "), f"{a:.6g}", f"{p:.6g}"])
