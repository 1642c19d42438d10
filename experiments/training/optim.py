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

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "warmup_cosine")


def _standard_promotion_schedule(schedule: optax.Schedule) -> optax.Schedule:
  def wrapped(step):
    with jax.numpy_dtype_promotion("standard"):
      return schedule(step)

  return wrapped


def _standard_promotion(tx: optax.GradientTransformation) -> optax.GradientTransformation:
  """``tx`` run under standard dtype promotion.

  optax mixes Python floats with int32 step counts (Adam's bias correction
  ``b1 ** count``), which ``jax_numpy_dtype_promotion="strict"`` rejects; a
  program that sets strict promotion for its own code can still train.
  """

  def init(params):
    with jax.numpy_dtype_promotion("standard"):
      return tx.init(params)

  def update(updates, state, params=None):
    with jax.numpy_dtype_promotion("standard"):
      return tx.update(updates, state, params)

  return optax.GradientTransformation(init, update)


def make_schedule(config: schema.Optimizer, total_steps: int) -> optax.Schedule:
  """The learning rate as a function of the step.

  ``constant``: ``learning_rate`` throughout. ``warmup_cosine``: linear from 0
  to ``learning_rate`` over ``warmup_steps``, then a cosine decay to
  ``end_learning_rate`` at ``total_steps``.

  Raises:
    ValueError: an unknown schedule, or warmup not shorter than the run.
  """
  if config.schedule == "constant":
    return _standard_promotion_schedule(optax.constant_schedule(config.learning_rate))
  if config.schedule == "warmup_cosine":
    if config.warmup_steps >= total_steps:
      raise ValueError(f"optimizer.warmup_steps ({config.warmup_steps}) must be less than the training steps ({total_steps})")
    return _standard_promotion_schedule(
        optax.warmup_cosine_decay_schedule(
            init_value=0.0,
            peak_value=config.learning_rate,
            warmup_steps=config.warmup_steps,
            decay_steps=total_steps,
            end_value=config.end_learning_rate,
        )
    )
  raise ValueError(f"unknown learning-rate schedule {config.schedule!r}; expected one of {SCHEDULES}")


def make_optimizer(config: schema.Optimizer, total_steps: int) -> optax.GradientTransformation:
  """``adam``, ``adamw`` or ``sgd`` with the configured schedule, after optional global-norm clipping.

  Raises:
    ValueError: an unknown optimizer or schedule.
  """
  schedule = make_schedule(config, total_steps)
  if config.name == "adam":
    tx = optax.adam(schedule)
  elif config.name == "adamw":
    tx = optax.adamw(schedule, weight_decay=config.weight_decay)
  elif config.name == "sgd":
    tx = optax.sgd(schedule, momentum=config.momentum or None)
  else:
    raise ValueError(f"unknown optimizer {config.name!r}; expected one of {OPTIMIZERS}")
  if config.clip_global_norm is not None:
    # Clip before the optimizer sees the gradient (as torch's clip_grad_norm_).
    tx = optax.chain(optax.clip_by_global_norm(config.clip_global_norm), tx)
  return _standard_promotion(tx)
