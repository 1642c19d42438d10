"""The optax optimizer and learning-rate schedule named by a config's ``optimizer`` section.

Example:

>>> from training.schema import Optimizer
>>> tx = make_optimizer(Optimizer(name="adamw", schedule="warmup_cosine", warmup_steps=10,
...                               clip_global_norm=1.0), total_steps=100)
>>> schedule = make_schedule(Optimizer(schedule="warmup_cosine", learning_rate=1.0, warmup_steps=10), 100)
>>> [round(float(schedule(s)), 3) for s in (0, 5, 10, 55, 100)]
[0.0, 0.5, 1.0, 0.5, 0.0]
"""

from __future__ import annotations

import jax
import optax

from training import schema
from training.config_files import ConfigError


def _standard_promotion_schedule(schedule: optax.Schedule) -> optax.Schedule:
  def wrapped(step):
    with jax.numpy_dtype_promotion("standard"):
      return schedule(step)

  return wrapped


def _standard_promotion(tx: optax.GradientTransformation) -> optax.GradientTransformation:
  """``tx`` run under standard dtype promotion.

  optax 0.2 computes Adam's bias correction ``b1 ** count`` from a Python float
  and an int32 step count, and its schedules mix them likewise; a program that
  sets ``jax_numpy_dtype_promotion="strict"`` for its own code (as the tests do)
  can still train.
  """

  def init(params):
    with jax.numpy_dtype_promotion("standard"):
      return tx.init(params)

  def update(updates, state, params=None):
    with jax.numpy_dtype_promotion("standard"):
      return tx.update(updates, state, params)

  return optax.GradientTransformation(init, update)


def _warmup_cosine(config: schema.Optimizer, total_steps: int) -> optax.Schedule:
  if config.warmup_steps >= total_steps:
    raise ConfigError(
      f"optimizer.warmup_steps ({config.warmup_steps}) must be less than the training steps ({total_steps})"
    )
  return optax.warmup_cosine_decay_schedule(
    init_value=0.0,
    peak_value=config.learning_rate,
    warmup_steps=config.warmup_steps,
    decay_steps=total_steps,
    end_value=config.end_learning_rate,
  )


# One entry per name of training.schema.ScheduleName and OptimizerName.
SCHEDULES = {
  "constant": lambda config, total_steps: optax.constant_schedule(config.learning_rate),
  "warmup_cosine": _warmup_cosine,
}
OPTIMIZERS = {
  "adam": lambda config, schedule: optax.adam(schedule),
  "adamw": lambda config, schedule: optax.adamw(schedule, weight_decay=config.weight_decay),
  "sgd": lambda config, schedule: optax.sgd(schedule, momentum=config.momentum or None),
}


def make_schedule(config: schema.Optimizer, total_steps: int) -> optax.Schedule:
  """The learning rate as a function of the step.

  ``constant``: ``learning_rate`` throughout. ``warmup_cosine``: linear from 0
  to ``learning_rate`` over ``warmup_steps``, then a cosine decay to
  ``end_learning_rate`` at ``total_steps``.

  Raises:
    ConfigError: warmup not shorter than the run.
  """
  return _standard_promotion_schedule(SCHEDULES[config.schedule](config, total_steps))


def make_optimizer(config: schema.Optimizer, total_steps: int) -> optax.GradientTransformation:
  """``adam``, ``adamw`` or ``sgd`` with the configured schedule, after optional global-norm clipping.

  Raises:
    ConfigError: warmup not shorter than the run.
  """
  tx = OPTIMIZERS[config.name](config, SCHEDULES[config.schedule](config, total_steps))
  if config.clip_global_norm is not None:
    # Clip before the optimizer sees the gradient (as torch's clip_grad_norm_).
    tx = optax.chain(optax.clip_by_global_norm(config.clip_global_norm), tx)
  return _standard_promotion(tx)
