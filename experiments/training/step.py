"""One training step and what it carries: the state, the model of a config, the losses; pure functions.

:func:`train_step` is jitted by :func:`training.trainer.train_and_evaluate`
with the state donated; :func:`eval_step` predicts without dropout.
"""

from __future__ import annotations

from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from training import forecaster
from training import models
from training import schema

Array = jax.Array


class TrainState(NamedTuple):
  """What a checkpoint holds; everything else is derived from the config."""

  step: Array  # shape=(), dtype=int32: optimizer steps taken
  params: Any  # the model's parameter tree
  opt_state: Any  # the optax state


class StepMetrics(NamedTuple):
  """What one training step reports; it stays on the device until a log line is due."""

  loss: Array  # shape=(), float32: training loss of the batch before the update
  grad_norm: Array  # shape=(), float32: global norm of the gradients
  finite: Array  # shape=(), bool: the loss and the updated parameters are all finite


def create_model(config: schema.Model, outputs: int, forecast=None):
  """The model of a config's ``model`` section: a :class:`~training.models.SequenceModel`, or with ``forecast``
  (a :class:`training.dayahead.Forecast`) a :class:`~training.forecaster.DayAheadModel`."""
  if forecast is not None:
    return forecaster.DayAheadModel(
      hidden=config.hidden,
      num_layers=config.num_layers,
      dropout=config.dropout,
      lookback=forecast.lookback,
      gap=forecast.gap,
      horizon=forecast.horizon,
      levels=tuple(forecast.levels),
      head=config.head,
      highway=config.highway,
    )
  return models.SequenceModel(
    kind=config.kind,
    hidden=config.hidden,
    num_layers=config.num_layers,
    dropout=config.dropout,
    outputs=outputs,
    highway=config.highway,
  )


def create_train_state(
  model, tx: optax.GradientTransformation, key: Array, sample_inputs: Array, start=None
) -> TrainState:
  """Initializes parameters from ``key`` on ``sample_inputs [B, T, I]`` (then ``start(params)``, a task's first
  parameters such as the day-ahead highway's ridge fit) and the optimizer state."""
  params = model.init(key, sample_inputs)["params"]
  if start is not None:
    params = start(params)
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params))


# The loss of each task kind, used for training and for evaluation alike.
LOSSES = {
  "mse": lambda predictions, targets: jnp.mean((predictions - targets) ** 2),  # targets [B, 1]
  "cross_entropy": lambda logits, labels: jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels)),
}


def compute_loss(kind, predictions: Array, targets: Array) -> Array:
  """Mean loss of a batch: ``mse`` against ``targets [B, 1]``, ``cross_entropy`` of logits ``[B, C]`` against
  labels ``[B]``, or a task's own loss function (the day-ahead task's pinball loss)."""
  return LOSSES[kind](predictions, targets) if isinstance(kind, str) else kind(predictions, targets)


def train_step(
  state: TrainState, inputs: Array, targets: Array, dropout_key: Array, *, model, tx, loss: str
) -> tuple[TrainState, StepMetrics]:
  """One optimizer step on a batch (``inputs [B, T, I]``); pure, to be jitted with ``state`` donated.

  The dropout key of step ``s`` is ``fold_in(dropout_key, s)``, so a step's
  randomness depends on the seed and the step alone (resumed runs repeat it).
  """
  step_key = jax.random.fold_in(dropout_key, state.step)

  def objective(params):
    predictions = model.apply({"params": params}, inputs, deterministic=False, rngs={"dropout": step_key})
    return compute_loss(loss, predictions, targets)

  value, grads = jax.value_and_grad(objective)(state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  grad_norm = optax.global_norm(grads)
  # Elementwise: a norm of huge but finite parameters would itself overflow.
  finite = jnp.isfinite(value) & jax.tree_util.tree_reduce(
    jnp.logical_and, jax.tree_util.tree_map(lambda p: jnp.all(jnp.isfinite(p)), params)
  )
  return TrainState(state.step + 1, params, opt_state), StepMetrics(value, grad_norm, finite)


def eval_step(params, inputs: Array, *, model) -> Array:
  """Predictions ``[B, outputs]`` without dropout."""
  return model.apply({"params": params}, inputs, deterministic=True)


class Mesh(NamedTuple):
  """The shardings of a 1-D data-parallel mesh: batches split over the devices, parameters replicated."""

  batch: NamedSharding  # leading axis split over the "data" mesh axis
  replicated: NamedSharding  # a full copy on every device

  def put_batch(self, array: np.ndarray) -> Array:
    # Every process holds the whole global batch (derived from seed and step),
    # so each one can hand over the shards of its own devices: this works
    # across hosts after jax.distributed.initialize() too.
    return jax.make_array_from_callback(array.shape, self.batch, lambda index: array[index])


def make_mesh() -> Mesh:
  """A 1-D mesh ``("data",)`` over all devices of all processes."""
  # Auto axes: XLA propagates the shardings (jax.make_mesh defaults to
  # Explicit axes, whose sharding-in-types flax's dropout does not support).
  mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  return Mesh(NamedSharding(mesh, P("data")), NamedSharding(mesh, P()))


def evaluate(task, predict, params, mesh: Mesh, eval_size: int) -> tuple[dict, np.ndarray]:
  """Predicts the whole test set in batches of ``eval_size``; returns ``(metrics, predictions [N_test, outputs])``."""
  chunks, targets = [], []
  for start in range(0, task.num_test, eval_size):
    x, y = task.test_batch(start, min(start + eval_size, task.num_test))
    count = len(x)
    if count < eval_size:  # pad to one shape: one compilation
      x = np.concatenate([x, np.zeros((eval_size - count, *x.shape[1:]), x.dtype)])
    chunks.append(np.asarray(predict(params, mesh.put_batch(x)))[:count])
    targets.append(y)
  predictions = np.concatenate(chunks)
  result = {"loss": float(compute_loss(task.loss, jnp.asarray(predictions), jnp.asarray(np.concatenate(targets))))}
  result.update(task.evaluate(predictions))
  return result, predictions
