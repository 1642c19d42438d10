"""The typed schema of training configs (``configs/*.yaml``), checked before anything runs.

Every section forbids unknown keys (:class:`config_files.Schema`), so a typo
in a YAML file or an override stops the run with a message naming the key and
the file. ``task`` is a union told apart by its ``kind`` key.

Example:

>>> from training.config_files import validate
>>> config = validate(TrainConfig, {"task": {"kind": "adding", "length": 20},
...                                 "train": {"batch_size": 8, "num_steps": 10}}, "example")
>>> config.task.length, config.model.kind, config.optimizer.name
(20, 'gru', 'adam')
"""

from __future__ import annotations

import typing
from typing import Annotated
from typing import Literal

import pydantic

from training.config_files import Schema

PositiveInt = Annotated[int, pydantic.Field(gt=0)]
Fraction = Annotated[float, pydantic.Field(gt=0.0, lt=1.0)]

# The option vocabularies, defined here once; the modules that act on them list
# them with typing.get_args (e.g. training.optim maps each OptimizerName to optax).
Feature = Literal["load", "hour", "dayofweek", "month", "dayofyear"]  # energy input columns
ModelKind = Literal["gru", "lstm"]
OptimizerName = Literal["adam", "adamw", "sgd"]
ScheduleName = Literal["constant", "warmup_cosine"]


class EnergyTask(Schema):
  """Next-hour forecasting on CSV files in the Kaggle "Hourly Energy Consumption" format."""

  kind: Literal["energy"]
  """The task: ``energy``."""
  csv_files: Annotated[list[str], pydantic.Field(min_length=1)]
  """One or several CSV paths or glob patterns (relative to the working directory)."""
  datetime_column: str = "Datetime"
  """The column of hourly timestamps (ISO, such as ``2012-01-01 00:00:00``)."""
  value_column: str | None = None
  """The load column; ``null``: the file's single column whose name ends in ``_MW`` (Kaggle files)."""
  features: list[Feature] = list(typing.get_args(Feature))
  """Input columns, ``load`` first; the FloydHub GRU post uses all five."""
  lookback: PositiveInt = 90
  """The input window, in hours (T)."""
  scaling: Literal["minmax", "standard"] = "minmax"
  """Per-file scaler of the inputs, fitted on the training part: ``minmax`` to [0, 1] (the post's), or
  ``standard`` (zero mean, unit variance)."""
  baselines: list[Literal["ridge", "lightgbm"]] = ["ridge"]
  """Models fitted on the training part and scored beside the network and the naive forecasts, on the same
  lookback: ``ridge`` (closed form, about a second), ``lightgbm`` (needs ``pip install lightgbm``)."""
  test_fraction: Fraction = 0.1
  """The last part of each file's windows, held out for the test."""
  plot_hours: PositiveInt = 168
  """Hours of the first test file shown in the forecast-vs-actual plot (one week: each day readable)."""


class DayAheadTask(Schema):
  """Day-ahead forecasts with intervals: the next day's hourly loads, issued once a day (``configs/energy_dayahead.yaml``)."""

  kind: Literal["dayahead"]
  """The task: ``dayahead``."""
  csv_files: Annotated[list[str], pydantic.Field(min_length=1)]
  """One or several CSV paths or glob patterns, in the layout of the ``energy`` task."""
  datetime_column: str = "Datetime"
  """The column of hourly timestamps."""
  value_column: str | None = None
  """The load column; ``null``: the file's single ``*_MW`` column."""
  lookback: PositiveInt = 168
  """Hours of load read before the issue (T); one week reaches the same hour last week."""
  horizon: PositiveInt = 24
  """Target hours from the midnight after the issue (F)."""
  issue_hour: Annotated[int, pydantic.Field(ge=0, le=23)] = 0
  """The hour the forecast is issued, the day before its targets: 0 reads the load up to 23:00 the evening
  before; a later hour (10, as a day-ahead market closing at noon) leaves a gap of ``24 - issue_hour``
  unknown hours."""
  quantiles: list[Fraction] = [0.1, 0.5, 0.9]
  """The quantile levels forecast, increasing, with 0.5 (the point forecast); the outermost two bound the
  interval scored (0.1 and 0.9: the 80% interval)."""
  holidays: str | None = None
  """The country whose public holidays are a calendar feature (a code of the ``holidays`` package, such
  as ``PT``); ``null``: none."""
  holidays_subdivision: str | None = None
  """The country's subdivision (``ENG`` for England, with ``holidays: GB``); ``null``: the whole country."""
  scaling: Literal["minmax", "standard"] = "standard"
  """The load's per-file scaler, fitted on the rows before the test."""
  baselines: list[Literal["ridge", "lightgbm"]] = ["ridge"]
  """Models fitted per lead time beside the seasonal naive forecasts: ``ridge``, ``lightgbm`` (installed apart)."""
  test_days: PositiveInt | None = None
  """Daily issues at the end of each file that are the test; ``null``: the last ``test_fraction`` of them."""
  test_fraction: Fraction = 0.1
  """The part of the daily issues held out for the test when ``test_days`` is ``null``."""
  holdout_days: Annotated[int, pydantic.Field(ge=0)] = 0
  """Days at the end of each file left out entirely (the later folds of a rolling-origin backtest)."""
  plot_days: PositiveInt = 14
  """Days of the first test file shown in the fan chart."""
  highway_start: Literal["seasonal", "ridge"] = "seasonal"
  """How a fresh run starts (with ``model.highway > 0``): ``seasonal``, the highway at the same hour of the
  latest known day and the head at its random init; ``ridge``, the highway at a ridge regression per lead on
  its ``model.highway`` loads of the training windows, fitted in closed form, and the head's weights at zero
  and its biases at the quantiles of that ridge's training residuals, so the network starts as that linear
  forecast with its empirical intervals and learns what it misses (for short series, measured in
  ``experiments/results/energy_dayahead``)."""

  @pydantic.field_validator("quantiles")
  @classmethod
  def _levels(cls, levels):
    if sorted(set(levels)) != list(levels):
      raise ValueError(f"quantiles {levels} must be distinct and increasing")
    if 0.5 not in levels:
      raise ValueError(f"quantiles {levels} must include 0.5, the point forecast")
    return levels

  @pydantic.model_validator(mode="after")
  def _country(self):
    if self.holidays is not None:
      check_holidays(self.holidays, self.holidays_subdivision)
    elif self.holidays_subdivision is not None:
      raise ValueError("task.holidays_subdivision needs task.holidays (the country)")
    return self


def check_holidays(country: str, subdivision: str | None) -> None:
  """Raises ``ValueError`` naming the key when the ``holidays`` package is missing or knows no such place."""
  try:
    import holidays  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ValueError("task.holidays needs the holidays package: pip install -e '.[train]'") from None
  known = holidays.list_supported_countries()
  if country not in known:
    raise ValueError(f"task.holidays: unknown country {country!r}; expected a code of the holidays package, such as PT")
  if subdivision is not None and subdivision not in known[country]:
    raise ValueError(
      f"task.holidays_subdivision: {country} has no subdivision {subdivision!r}; expected one of {known[country]}"
    )


class AddingTask(Schema):
  """The adding problem of Hochreiter & Schmidhuber (1997)."""

  kind: Literal["adding"]
  """The task: ``adding``."""
  length: PositiveInt = 200
  """Steps of each sequence (T)."""
  test_size: PositiveInt = 2000
  """Test sequences, drawn once from the seed."""


class DigitsTask(Schema):
  """scikit-learn's 8x8 handwritten digits read as 8 rows of 8 pixels."""

  kind: Literal["digits"]
  """The task: ``digits``."""
  test_fraction: Fraction = 0.2
  """The part of the 1797 images held out for the test."""


Task = Annotated[EnergyTask | DayAheadTask | AddingTask | DigitsTask, pydantic.Field(discriminator="kind")]


class Model(Schema):
  """A recurrent backbone with the FloydHub GRU post's head: ReLU, then Linear on the last step."""

  kind: ModelKind = "gru"
  """The backbone: ``gru`` (``jaxgru.GRU``) or ``lstm`` (Flax's ``nn.LSTMCell`` layers under ``nn.RNN``)."""
  hidden: PositiveInt = 256
  """Hidden features of each layer (H)."""
  num_layers: PositiveInt = 2
  """Stacked layers (L)."""
  dropout: Annotated[float, pydantic.Field(ge=0.0, lt=1.0)] = 0.0
  """Dropout rate between layers."""
  highway: Annotated[int, pydantic.Field(ge=0)] = 0
  """LSTNet's linear autoregressive term (Lai et al. 2018) on the last ``highway`` steps of the first
  input feature, added to the output; 0: none, the FloydHub post's model. The ``dayahead`` task: one
  linear map per lead on the last ``highway`` loads, started as ``task.highway_start`` says."""
  head: Literal["direct", "decoder"] = "direct"
  """The ``dayahead`` task's multi-horizon head: ``direct`` (one Dense layer from the last state and the
  target hours' calendar to every lead and quantile) or ``decoder`` (a second GRU over the target hours'
  calendar, from the encoder's state)."""


class Optimizer(Schema):
  """An optax optimizer with a learning-rate schedule and optional clipping."""

  name: OptimizerName = "adam"
  """The optax optimizer: ``adam``, ``adamw`` or ``sgd``."""
  learning_rate: Annotated[float, pydantic.Field(gt=0.0)] = 1e-3
  """The peak learning rate."""
  schedule: ScheduleName = "constant"
  """``constant``, or ``warmup_cosine``: a linear warmup, then a cosine decay to ``end_learning_rate``."""
  warmup_steps: Annotated[int, pydantic.Field(ge=0)] = 0
  """Steps of the linear warmup (``warmup_cosine`` only)."""
  end_learning_rate: Annotated[float, pydantic.Field(ge=0.0)] = 0.0
  """The learning rate at the last step (``warmup_cosine`` only)."""
  weight_decay: Annotated[float, pydantic.Field(ge=0.0)] = 1e-4
  """Decoupled weight decay (``adamw`` only)."""
  momentum: Annotated[float, pydantic.Field(ge=0.0, lt=1.0)] = 0.0
  """Momentum (``sgd`` only)."""
  clip_global_norm: Annotated[float, pydantic.Field(gt=0.0)] | None = None
  """Clips the gradients to this global norm; ``null``: no clipping."""


class Train(Schema):
  """Batching, length of training and the schedules of logging, evaluation and checkpoints.

  Exactly one of ``num_epochs`` (tasks with a fixed training set) and
  ``num_steps`` is given. ``eval_every`` and ``checkpoint_every`` of ``None``
  mean once per epoch (every tenth of the run when there are no epochs); the
  last step is always evaluated and saved, and every evaluation is saved.
  """

  batch_size: PositiveInt
  """The global batch, split over all devices (a multiple of the device count)."""
  num_epochs: PositiveInt | None = None
  """The length of training in passes over the training set (tasks with a fixed training set)."""
  num_steps: PositiveInt | None = None
  """The length of training in steps (instead of ``num_epochs``)."""
  log_every: PositiveInt = 50
  """Steps between two lines of ``metrics.jsonl`` (loss, learning rate, gradient norm, throughput)."""
  eval_every: PositiveInt | None = None
  """Steps between two evaluations on the test part; ``null``: once per epoch (a tenth of the run without epochs)."""
  checkpoint_every: PositiveInt | None = None
  """Steps between two checkpoints; ``null``: once per epoch (a tenth of the run without epochs)."""
  keep_checkpoints: PositiveInt = 3
  """The latest checkpoints kept; the best one is kept besides."""
  eval_batch_size: PositiveInt = 1024
  """The batch of evaluation and prediction (one shape: one compilation)."""
  progress_bar: bool = True
  """The progress bar and a line per evaluation on the console."""

  @pydantic.model_validator(mode="after")
  def _one_length(self):
    if (self.num_epochs is None) == (self.num_steps is None):
      raise ValueError("give exactly one of train.num_epochs and train.num_steps")
    return self


class TrainConfig(Schema):
  """A whole training run: ``python experiments/train.py --config <file>``."""

  seed: Annotated[int, pydantic.Field(ge=0, lt=2**32)] = 0
  """Seeds the batches, the initialization and dropout: a run repeats exactly."""
  task: Task
  model: Model = Model()
  optimizer: Optimizer = Optimizer()
  train: Train

  @pydantic.model_validator(mode="after")
  def _consistent(self):
    """The constraints between sections, every broken one named at once (each section checks its own keys)."""
    problems = []
    length, where = input_length(self.task)
    if self.model.highway > length:
      problems.append(
        f"model.highway ({self.model.highway}) reads more steps than the input has: {where} is {length}; "
        f"set model.highway to at most {length} (0: no highway)"
      )
    if isinstance(self.task, DayAheadTask) and "highway_start" in self.task.model_fields_set and not self.model.highway:
      problems.append(
        f"task.highway_start ({self.task.highway_start}) starts the highway, but model.highway is 0 (none); "
        "set model.highway to the loads it reads, or drop task.highway_start"
      )
    if isinstance(self.task, DayAheadTask) and self.model.kind != "gru":
      problems.append(f"model.kind {self.model.kind!r} is not available for the dayahead task; expected gru")
    warmup, steps = self.optimizer.warmup_steps, self.train.num_steps
    if self.optimizer.schedule == "warmup_cosine" and steps is not None and warmup >= steps:
      problems.append(f"optimizer.warmup_steps ({warmup}) must be shorter than the run (train.num_steps: {steps})")
    if problems:
      raise ValueError("; ".join(problems))
    return self


def input_length(task: EnergyTask | DayAheadTask | AddingTask | DigitsTask) -> tuple[int, str]:
  """T, the steps of one input sequence of ``task`` (of load, for the highway), and the config key that sets it."""
  if isinstance(task, EnergyTask | DayAheadTask):
    return task.lookback, "task.lookback"
  if isinstance(task, AddingTask):
    return task.length, "task.length"
  return 8, "the digits task's sequence length (8 rows)"
