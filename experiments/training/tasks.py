"""Tasks: what a config's ``task`` section trains on, its loss, its test metrics and its result plot.

Every training batch is a pure function of the seed and the step number, so a
resumed run sees exactly the batches an uninterrupted run would have seen.

Example:

>>> from training import schema
>>> task = build_task(schema.AddingTask(kind="adding", length=10, test_size=8), seed=0, batch_size=4)
>>> x, y = task.train_batch(0)
>>> x.shape, y.shape, task.loss, task.num_test  # [B, T, I], [B, 1]
((4, 10, 2), (4, 1), 'mse', 8)
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable

import numpy as np

from training import adding
from training import baselines as fitted
from training import dayahead
from training import dayahead_baselines
from training import dayahead_report
from training import digits
from training import energy
from training import metrics
from training import plots
from training import quantiles
from training import scaling as scaling_lib
from training import schema

Batch = tuple[np.ndarray, np.ndarray]  # inputs [B, T, I] float32, targets [B, 1] float32 or [B] int32


class EpochSampler:
  """Batch ``step`` of a fixed training set: epoch ``step // steps_per_epoch`` shuffled by the seed.

  The incomplete last batch of an epoch is dropped, as the FloydHub GRU
  post's ``DataLoader(drop_last=True)``.
  """

  def __init__(self, num_examples: int, batch_size: int, seed: int):
    if batch_size > num_examples:
      raise ValueError(f"train.batch_size ({batch_size}) is larger than the training set ({num_examples} examples)")
    self.num_examples, self.batch_size, self.seed = num_examples, batch_size, seed
    self.steps_per_epoch = num_examples // batch_size
    self._epoch, self._order = -1, None

  def indices(self, step: int) -> np.ndarray:
    """Example indices ``[B]`` of training step ``step``."""
    epoch, within = divmod(step, self.steps_per_epoch)
    if epoch != self._epoch:  # one permutation per epoch, drawn from (seed, epoch) alone
      self._epoch, self._order = epoch, np.random.default_rng([self.seed, 4, epoch]).permutation(self.num_examples)
    return self._order[within * self.batch_size : (within + 1) * self.batch_size]


@dataclasses.dataclass(frozen=True)
class Task:
  """A training problem, independent of the model and the training loop."""

  name: str  # "energy", "dayahead", "adding" or "digits"
  input_features: int  # I
  outputs: int  # size of the model's prediction per sequence
  loss: str | Callable  # "mse", "cross_entropy", or (predictions, targets) -> mean loss
  steps_per_epoch: int | None  # None: an endless stream of fresh batches
  num_test: int
  train_batch: Callable[[int], Batch]  # step -> batch
  test_batch: Callable[[int, int], Batch]  # (start, stop) -> test examples start..stop-1
  evaluate: Callable[[np.ndarray], dict]  # test predictions [N_test, outputs] -> metrics
  save_result: Callable[[np.ndarray, str], None]  # (test predictions, run folder) -> plot and arrays
  forecast: dayahead.Forecast | None = None  # a day-ahead task: the windows' shape the model is built for
  start: Callable[[dict], dict] | None = None  # a fresh run's params after init -> its first params (traced in jit)


def _energy(config: schema.EnergyTask, seed: int, batch_size: int) -> Task:
  data = energy.load_energy(
    energy.resolve_paths(config.csv_files),
    lookback=config.lookback,
    test_fraction=config.test_fraction,
    datetime_column=config.datetime_column,
    value_column=config.value_column,
    features=config.features,
    scaling=config.scaling,
  )
  sampler = EpochSampler(data.num_train, batch_size, seed)
  # What a forecaster fits first, on the same lookback and training windows: fitted once, scored at every evaluation.
  fitted_test = fitted.fit_and_forecast(data, config.baselines, seed=seed)

  def forecasts(predictions):
    ends = data.test_ends
    return data.unscale(predictions[:, 0], ends), data.load[ends], {**fitted_test, **data.naive_forecasts(ends)}

  def evaluate(predictions):
    forecast, actual, baselines = forecasts(predictions)
    return {**metrics.forecast_metrics(forecast, actual), **metrics.baseline_metrics(baselines, actual)}

  def save_result(predictions, workdir):
    forecast, actual, baselines = forecasts(predictions)
    arrays = {
      "forecast": forecast,
      "actual": actual,
      "time": data.times[data.test_ends],
      "file_index": data.file_index[data.test_ends],
      "files": np.array(data.files),
      **{f"naive_{name}": values for name, values in baselines.items() if name in energy.NAIVE_LAGS},
      **{f"fitted_{name}": values for name, values in baselines.items() if name in fitted.KINDS},
    }
    np.savez(f"{workdir}/test_predictions.npz", **arrays)
    scaling_lib.save_scaling(data, f"{workdir}/scaling.json")
    plots.plot_test_forecasts(f"{workdir}/forecast.png", arrays, {"model": forecast}, hours=config.plot_hours)

  return Task(
    name="energy",
    input_features=len(data.feature_names),
    outputs=1,
    loss="mse",
    steps_per_epoch=sampler.steps_per_epoch,
    num_test=data.num_test,
    train_batch=lambda step: data.windows(data.train_ends[sampler.indices(step)]),
    test_batch=lambda start, stop: data.windows(data.test_ends[start:stop]),
    evaluate=evaluate,
    save_result=save_result,
  )


def _dayahead(config: schema.DayAheadTask, seed: int, batch_size: int, *, highway: int = 0) -> Task:
  data = dayahead.load_dayahead(
    energy.resolve_paths(config.csv_files),
    lookback=config.lookback,
    horizon=config.horizon,
    issue_hour=config.issue_hour,
    test_days=config.test_days,
    test_fraction=config.test_fraction,
    holdout_days=config.holdout_days,
    holidays=config.holidays,
    holidays_subdivision=config.holidays_subdivision,
    datetime_column=config.datetime_column,
    value_column=config.value_column,
    scaling=config.scaling,
  )
  levels = tuple(config.quantiles)
  sampler = EpochSampler(data.num_train, batch_size, seed)
  baselines = dayahead_baselines.forecasts(data, config.baselines, levels, seed=seed)  # fitted once
  actual = data.load[data.target_rows(data.test_origins)]

  def unscaled(predictions):  # [N_test, F * Q] scaled -> [N_test, F, Q] in the original unit
    return data.unscale(predictions.reshape(-1, data.horizon, len(levels)), data.test_origins)

  def save_result(predictions, workdir):
    dayahead_report.save_result(workdir, data, unscaled(predictions), baselines, levels, days=config.plot_days)
    scaling_lib.save_dayahead_scaling(data, config, f"{workdir}/scaling.json")

  start = None
  if config.highway_start == "ridge" and highway:
    kernel, bias, raw = dayahead_baselines.linear_start(data, highway, levels)

    def start(params):  # the network starts as its highway's ridge forecast with that ridge's residual intervals
      head = params["head"]
      head_bias = raw.reshape(-1) if head["bias"].shape == (raw.size,) else raw.mean(axis=0)  # direct | decoder
      head = {"kernel": np.zeros(head["kernel"].shape, np.float32), "bias": head_bias}
      return {**params, "highway": {"kernel": kernel, "bias": bias}, "head": head}

  return Task(
    name="dayahead",
    input_features=len(dayahead.INPUTS),
    outputs=data.horizon * len(levels),
    loss=functools.partial(quantiles.pinball_loss, levels=levels),
    steps_per_epoch=sampler.steps_per_epoch,
    num_test=data.num_test,
    train_batch=lambda step: data.windows(data.train_origins[sampler.indices(step)]),
    test_batch=lambda start, stop: data.windows(data.test_origins[start:stop]),
    evaluate=lambda predictions: dayahead_report.evaluate_forecasts(unscaled(predictions), actual, baselines, levels),
    save_result=save_result,
    forecast=dayahead.Forecast(data.lookback, data.gap, data.horizon, levels),
    start=start,
  )


def _adding(config: schema.AddingTask, seed: int, batch_size: int) -> Task:
  x_test, y_test = adding.adding_batch(np.random.default_rng([seed, 2]), batch=config.test_size, length=config.length)

  def evaluate(predictions):
    return {
      "mse": float(np.mean((predictions - y_test) ** 2)),
      "constant_prediction_mse": float(np.mean((1.0 - y_test) ** 2)),
    }

  def save_result(predictions, workdir):
    np.savez(f"{workdir}/test_predictions.npz", prediction=predictions[:, 0], target=y_test[:, 0])
    plots.plot_scatter(
      f"{workdir}/result.png", y_test[:, 0], predictions[:, 0], title=f"adding problem, T={config.length}"
    )

  return Task(
    name="adding",
    input_features=2,
    outputs=1,
    loss="mse",
    steps_per_epoch=None,
    num_test=config.test_size,
    train_batch=lambda step: adding.adding_batch(
      np.random.default_rng([seed, 1, step]), batch=batch_size, length=config.length
    ),
    test_batch=lambda start, stop: (x_test[start:stop], y_test[start:stop]),
    evaluate=evaluate,
    save_result=save_result,
  )


def _digits(config: schema.DigitsTask, seed: int, batch_size: int) -> Task:
  x_train, y_train, x_test, y_test = digits.load_digits_sequences(test_fraction=config.test_fraction, seed=seed)
  sampler = EpochSampler(len(y_train), batch_size, seed)

  def train_batch(step):
    idx = sampler.indices(step)
    return x_train[idx], y_train[idx]

  def evaluate(predictions):
    return {"accuracy": float(np.mean(predictions.argmax(axis=-1) == y_test))}

  def save_result(predictions, workdir):
    predicted = predictions.argmax(axis=-1)
    confusion = np.zeros((digits.NUM_CLASSES, digits.NUM_CLASSES), np.int64)
    np.add.at(confusion, (y_test, predicted), 1)
    np.savez(f"{workdir}/test_predictions.npz", logits=predictions, label=y_test)
    with open(f"{workdir}/confusion.json", "w", encoding="utf-8") as f:
      json.dump(confusion.tolist(), f)
    plots.plot_confusion(f"{workdir}/result.png", confusion, title="digits, rows read as a sequence")

  return Task(
    name="digits",
    input_features=x_train.shape[-1],
    outputs=digits.NUM_CLASSES,
    loss="cross_entropy",
    steps_per_epoch=sampler.steps_per_epoch,
    num_test=len(y_test),
    train_batch=train_batch,
    test_batch=lambda start, stop: (x_test[start:stop], y_test[start:stop]),
    evaluate=evaluate,
    save_result=save_result,
  )


def build_task(
  config: schema.EnergyTask | schema.DayAheadTask | schema.AddingTask | schema.DigitsTask,
  *,
  seed: int,
  batch_size: int,
  highway: int = 0,
) -> Task:
  """Loads (or generates) the data of a task config; ``highway`` is ``model.highway`` (a day-ahead run's ridge start).

  Raises:
    training.energy.DataError: missing or malformed data files.
    ValueError: a batch larger than the training set.
  """
  builders = {"energy": _energy, "dayahead": functools.partial(_dayahead, highway=highway), "adding": _adding}
  builders["digits"] = _digits
  if config.kind not in builders:
    raise ValueError(f"unknown task kind {config.kind!r}; expected one of {sorted(builders)}")
  return builders[config.kind](config, seed, batch_size)
