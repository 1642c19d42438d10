"""Forecasts with a finished energy run: its best checkpoint, its config and its fitted scaling.

``load_run(workdir)`` rebuilds the model and its variables; ``forecast(run, csv_path)``
forecasts every window of an hourly CSV file (by default the run's own test part).

Example (``workdir`` a finished energy run, e.g. ``runs/energy_default``)::

    run = load_run("runs/energy_default")
    result = forecast(run)  # the run's test part
    write_csv(result, "forecast.csv")
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from config_files import load_config
from training import checkpoint
from training import energy
from training import optim
from training import schema
from training import trainer


class RunError(ValueError):
  """A run folder cannot be used for forecasting."""


@dataclasses.dataclass(frozen=True)
class Run:
  """A trained energy model, ready to forecast."""

  workdir: str  # the run folder
  model: Any  # training.models.SequenceModel
  variables: dict  # {"params": ...} of the best checkpoint
  config: schema.TrainConfig  # the run's config.yaml
  scaling: energy.Scaling  # the scalers fitted on the training part of each file
  step: int  # the training step of the checkpoint


@dataclasses.dataclass(frozen=True)
class Forecast:
  """Next-hour forecasts of one file's windows."""

  csv_path: str  # the file forecast
  times: np.ndarray  # [N] datetime64[s], the hour each forecast is for
  actual: np.ndarray  # [N] float64, the load of that hour
  forecast: np.ndarray  # [N] float64, the model's forecast


def load_run(workdir: str) -> Run:
  """Loads a finished energy run folder: model, best-checkpoint variables, config and scaling.

  Raises:
    RunError: the folder is not a finished energy run (no config, scaling or checkpoint).
  """
  needed = [os.path.join(workdir, name) for name in ("config.yaml", "scaling.json", "checkpoints", "summary.json")]
  missing = [p for p in needed if not os.path.exists(p)]
  if missing:
    raise RunError(f"{workdir} is not a finished energy run: {missing} missing; expected the folder of a finished "
                   "`python experiments/train.py` run of an energy config")
  config = load_config(schema.TrainConfig, needed[0])
  if config.task.kind != "energy":
    raise RunError(f"{workdir} is a {config.task.kind!r} run; only energy runs forecast load")
  scaling = energy.load_scaling(needed[1])
  model = trainer.create_model(config.model, outputs=1)
  with open(needed[3], encoding="utf-8") as f:
    total_steps = json.load(f)["steps"]
  tx = optim.make_optimizer(config.optimizer, total_steps)  # the checkpoint holds the optimizer state too
  sample = jnp.zeros((1, scaling.lookback, len(scaling.feature_names)), jnp.float32)
  like = trainer.create_train_state(model, tx, jax.random.key(0), sample)
  ckpt = checkpoint.Checkpoints(needed[2], keep=config.train.keep_checkpoints)
  try:
    best = ckpt.best()
    steps = ckpt.steps()
    if not steps:
      raise RunError(f"{workdir} has no checkpoint in {needed[2]}; train it first")
    step = best[0] if best else steps[-1]
    state = ckpt.restore(step, like)
  finally:
    ckpt.close()
  return Run(workdir, model, {"params": state.params}, config, scaling, step)


def forecast(run: Run, csv_path: str | None = None, *, batch_size: int = 1024) -> Forecast:
  """Forecasts every window of ``csv_path`` (the run's first file's test part when ``None``).

  A file of the run is scaled with its own scaler; any other file with the
  scaler of the run's first file.

  Raises:
    training.energy.DataError: the file is missing or malformed, lacks the run's
      columns, or is too short for one window.
  """
  task = run.config.task
  own = csv_path is None
  path = run.scaling.files[0] if own else csv_path
  times, load = energy.read_hourly_csv(path, datetime_column=task.datetime_column, value_column=task.value_column)
  lookback = run.scaling.lookback
  if len(load) <= lookback:
    raise energy.DataError(f"{path}: {len(load)} rows, too few for one forecast; the run needs more than "
                           f"task.lookback = {lookback} consecutive hours")
  same = [i for i, f in enumerate(run.scaling.files) if os.path.abspath(f) == os.path.abspath(path)]
  file = same[0] if same else 0
  features = run.scaling.scale(energy.feature_columns(times, load, run.scaling.feature_names), file)  # [N, I]
  first = lookback + energy.split_point(len(load), lookback, task.test_fraction, path) if own else lookback
  ends = np.arange(first, len(load))  # [N_forecast]
  predict = jax.jit(lambda x: trainer.eval_step(run.variables["params"], x, model=run.model))
  scaled = []
  for start in range(0, len(ends), batch_size):
    rows = ends[start : start + batch_size, None] + np.arange(-lookback, 0)  # [B, T]
    scaled.append(np.asarray(predict(features[rows]))[:, 0])
  return Forecast(path, np.array(times, "datetime64[s]")[ends], load[ends],
                  run.scaling.unscale_load(np.concatenate(scaled), file))


def write_csv(result: Forecast, out: str, *, force: bool = False) -> None:
  """Writes ``Datetime,actual,forecast`` rows to ``out``.

  Raises:
    FileExistsError: ``out`` exists and ``force`` is false.
  """
  if os.path.exists(out) and not force:
    raise FileExistsError(f"{out} already exists; choose another --out or pass --force to overwrite it")
  with open(out, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(["Datetime", "actual", "forecast"])
    for t, a, p in zip(result.times, result.actual, result.forecast):
      writer.writerow([str(t).replace("T", " "), f"{a:.6g}", f"{p:.6g}"])
