r"""The recurrent-policy modes: a PPO-RNN update and an acting step, with episode resets.

Reinforcement-learning code (purejaxrl's ``ppo_rnn.py``, and others) runs a
GRU cell under ``nn.scan`` and zeroes the hidden state wherever an episode
ended. One update of a recurrent policy runs it over a whole rollout of
``T`` steps of ``B`` environments, from the state carried over from the
previous rollout; acting runs one step of every environment at a time. The
rows, all on the same weights and data (one layer, float32):

- ``policy.flax_cell``: purejaxrl's ``ScannedRNN``, ``flax.linen.GRUCell``
  under ``nn.scan`` with ``jnp.where`` resets (:class:`ScannedRNN`);
- ``policy.jaxgru_cell``: the same with :class:`jaxgru.GRUCell`;
- ``policy.jaxgru_resets``: one :class:`jaxgru.GRU` call with ``resets=`` and
  a zero ``reset_carry=`` (implementation ``"auto"``);
- ``policy.jaxgru_no_resets``: the same layer without resets, the speed
  reference of the resets. It computes other numbers, so it is checked against
  its own reference (the first row's model with no resets).

One timed update is the jitted value and gradients of a value head's loss
over the rollout, with respect to the GRU's and the head's parameters:

.. math::

   v_{b,t} = h_{b,t} W_v + b_v, \qquad
   \mathcal{L} = \tfrac{1}{BT} \textstyle\sum_{b,t} (v_{b,t} - y_{b,t})^2

Each row gets its data in its own layout (time-major for the cells under
``nn.scan``, as purejaxrl keeps its rollouts; batch-major for ``jaxgru.GRU``),
arranged before timing. Every row is checked against a float32 reference at
the highest matmul precision: the loss and every gradient (GRU parameters in
jaxgru's layout, Flax's folded biases mapped as in
:func:`benchmarking.peers.flax_grads_to_layout`), and for the acting step the
new carry.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from collections.abc import Mapping
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import jaxgru
from benchmarking.peers import flax_grads_to_layout
from benchmarking.peers import jax_memory_bytes
from benchmarking.problem import Problem
from benchmarking.problem import flat_params
from benchmarking.problem import param_name
from benchmarking.registry import POLICY_MODES
from benchmarking.registry import Mode
from benchmarking.registry import Runner
from benchmarking.registry import register_baselines
from benchmarking.registry import register_peer
from benchmarking.registry import register_reference
from jaxgru import interop

# The rollout's episode ends, fixed so every row sees the same ones: each step ends an
# episode with this probability (CartPole-like episodes of a few dozen steps), and every
# RESET_AT_START_EVERY-th environment starts a new episode at the rollout's first step.
DONE_PROBABILITY = 0.03
RESET_AT_START_EVERY = 4

FLAX_CELL = "policy.flax_cell"
JAXGRU_CELL = "policy.jaxgru_cell"
JAXGRU_RESETS = "policy.jaxgru_resets"
JAXGRU_NO_RESETS = "policy.jaxgru_no_resets"
MODEL = "policy"  # the GRU with resets: rows (a), (b), (c)
MODEL_NO_RESETS = "policy_no_resets"  # the same GRU over the same data, never reset


class Rollout(NamedTuple):
  """What one update reads besides the GRU's weights and inputs, drawn from the problem's seed."""

  initial_carry: np.ndarray  # [B, H] float32, the state carried over from the previous rollout
  resets: np.ndarray  # [B, T] bool; true: an episode ended before step t, the state entering it is zeros
  targets: np.ndarray  # [B, T] float32, the value targets
  head_kernel: np.ndarray  # [H, 1] float32, the value head
  head_bias: np.ndarray  # [1] float32


def make_rollout(problem: Problem) -> Rollout:
  """Draws a rollout's carried-over state, episode ends, value targets and head for ``problem``.

  >>> from benchmarking.problem import make_problem
  >>> rollout = make_rollout(make_problem((8, 64, 16, 32), "float32"))
  >>> rollout.initial_carry.shape, rollout.resets.shape, rollout.resets.dtype, bool(rollout.resets[0, 0])
  ((8, 32), (8, 64), dtype('bool'), True)
  """
  batch, steps, _, hidden = problem.shape
  rng = np.random.default_rng(problem.seed + 3)
  resets = rng.random((batch, steps)) < DONE_PROBABILITY
  resets[::RESET_AT_START_EVERY, 0] = True
  bound = 1.0 / np.sqrt(hidden)
  return Rollout(
    initial_carry=rng.uniform(-1.0, 1.0, (batch, hidden)).astype(np.float32),  # a GRU state lies in (-1, 1)
    resets=resets,
    targets=rng.standard_normal((batch, steps)).astype(np.float32),
    head_kernel=rng.uniform(-bound, bound, (hidden, 1)).astype(np.float32),
    head_bias=rng.uniform(-bound, bound, (1,)).astype(np.float32),
  )


def resets_unavailable() -> str | None:
  """Why ``jaxgru.GRU`` cannot take resets in this checkout, or ``None`` when it can."""
  accepted = inspect.signature(jaxgru.GRU.__call__).parameters
  missing = [name for name in ("resets", "reset_carry") if name not in accepted]
  return f"jaxgru.GRU.__call__ has no {', '.join(missing)} argument in this checkout" if missing else None


class ScannedRNN(nn.Module):
  """purejaxrl's ``ScannedRNN`` with a choice of cell: one step per scanned input, the carry zeroed at resets.

  Attributes:
    cell_type: ``flax.linen.GRUCell`` or :class:`jaxgru.GRUCell`.
    features: H.
  """

  cell_type: type
  features: int

  @functools.partial(nn.scan, variable_broadcast="params", in_axes=0, out_axes=0, split_rngs={"params": False})
  @nn.compact
  def __call__(self, carry, x):
    """One step: ``carry [B, H]``, ``x = (inputs [B, I], resets [B])`` -> ``(new carry, outputs)``, both ``[B, H]``."""
    inputs, resets = x
    carry = jnp.where(resets[:, None], jnp.zeros_like(carry), carry)
    return self.cell_type(features=self.features, name="cell")(carry, inputs)


# run(gru_params, x, resets, h0) -> outputs: a row's whole rollout in its own layout
# (time-major [T, B, ...] or batch-major [B, T, ...]), h0 its initial carry.
RunRollout = Callable[[object, jax.Array, jax.Array, jax.Array], jax.Array]
# act(gru_params, carry [B, H], inputs [B, I], resets [B]) -> new carry [B, H]
Act = Callable[[object, jax.Array, jax.Array, jax.Array], jax.Array]


class Row(NamedTuple):
  """How one row runs the GRU, in both modes."""

  params: object  # the GRU's parameter pytree in the row's layout
  run: RunRollout
  time_major: bool  # whether ``run`` reads [T, B, ...] (else [B, T, ...])
  carry_axes: int  # the rank ``run`` wants its initial carry in: 2 for [B, H], 3 for [1, B, H]
  act: Act
  grads_to_layout: Callable[[object], Mapping[str, np.ndarray]]  # GRU gradients in jaxgru's flat layout


def _cell_row(problem: Problem, cell_type: type, params, grads_to_layout, apply_resets: bool = True) -> Row:
  hidden = problem.shape[3]
  rnn = ScannedRNN(cell_type, hidden)
  cell = cell_type(features=hidden)

  def run(params, x, resets, h0):
    return rnn.apply({"params": params}, h0, (x, resets if apply_resets else jnp.zeros_like(resets)))[1]

  def act(params, h, x, resets):
    if apply_resets:
      h = jnp.where(resets[:, None], jnp.zeros_like(h), h)
    return cell.apply({"params": params["cell"]}, h, x)[0]

  return Row(params, run, True, 2, act, grads_to_layout)


def _flax_row(problem: Problem, apply_resets: bool = True) -> Row:
  params = {"cell": interop.to_flax_cell(problem.params[param_name(0, 0)])}
  return _cell_row(problem, nn.GRUCell, params, lambda g: flax_grads_to_layout([[g["cell"]]]), apply_resets)


def _jaxgru_cell_row(problem: Problem) -> Row:
  params = {"cell": jax.tree.map(jnp.asarray, problem.params[param_name(0, 0)])}
  return _cell_row(problem, jaxgru.GRUCell, params, lambda g: flat_params({param_name(0, 0): g["cell"]}))


def _jaxgru_layer_row(problem: Problem, with_resets: bool) -> Row:
  if with_resets and (why := resets_unavailable()):
    raise NotImplementedError(f"not available: {why}")
  layer = jaxgru.GRU(features=problem.shape[3], implementation="auto")

  def run(params, x, resets, h0):
    if not with_resets:
      return layer.apply({"params": params}, x, initial_carry=h0)[0]
    return layer.apply({"params": params}, x, initial_carry=h0, resets=resets, reset_carry=jnp.zeros_like(h0))[0]

  def act(params, h, x, resets):  # a T = 1 sequence
    h0 = h[None]  # [1, B, H]
    if not with_resets:
      return layer.apply({"params": params}, x[:, None], initial_carry=h0)[1][0]
    return layer.apply(
      {"params": params}, x[:, None], initial_carry=h0, resets=resets[:, None], reset_carry=jnp.zeros_like(h0)
    )[1][0]

  params = jax.tree.map(jnp.asarray, problem.params)
  return Row(params, run, False, 3, act, flat_params)


def _check_problem(problem: Problem) -> None:
  if problem.num_layers != 1 or problem.bidirectional:
    raise ValueError(
      "the recurrent-policy modes run one forward GRU layer (purejaxrl's); "
      f"got num_layers={problem.num_layers}, bidirectional={problem.bidirectional}"
    )
  if problem.dtype != "float32":
    raise ValueError(f"the recurrent-policy modes run in float32, got dtype {problem.dtype!r}")


def update_runner(row: Row, problem: Problem) -> Runner:
  """A :class:`Runner` of one PPO-RNN update's recurrent part: the value loss and its gradients (module docstring)."""
  rollout = make_rollout(problem)
  layout = (lambda a: np.swapaxes(a, 0, 1)) if row.time_major else (lambda a: a)  # from [B, T, ...]
  x = jnp.asarray(layout(problem.inputs))
  resets = jnp.asarray(layout(rollout.resets))
  targets = jnp.asarray(layout(rollout.targets))
  h0 = jnp.asarray(rollout.initial_carry if row.carry_axes == 2 else rollout.initial_carry[None])
  params = {
    "gru": row.params,
    "head": {"kernel": jnp.asarray(rollout.head_kernel), "bias": jnp.asarray(rollout.head_bias)},
  }

  def loss_fn(params, x, resets, h0, targets):
    y = row.run(params["gru"], x, resets, h0)  # [T, B, H] or [B, T, H]
    values = jnp.matmul(y, params["head"]["kernel"]) + params["head"]["bias"].reshape(1, 1, 1)  # [., ., 1]
    return jnp.mean((values[..., 0] - targets) ** 2)

  jitted = jax.jit(jax.value_and_grad(loss_fn))
  args = (params, x, resets, h0, targets)

  def to_numpy(result):
    loss, grads = result
    return {
      "loss": np.asarray(loss, np.float32).reshape(1),
      "head/kernel": np.asarray(grads["head"]["kernel"]),
      "head/bias": np.asarray(grads["head"]["bias"]),
      **{k: np.asarray(v, np.float32) for k, v in row.grads_to_layout(grads["gru"]).items()},
    }

  return Runner(
    call=lambda: jax.block_until_ready(jitted(*args)),
    to_numpy=to_numpy,
    memory_bytes=lambda: jax_memory_bytes(jitted, args),
    framework="jax",
    hlo=lambda: jitted.lower(*args).compile().as_text(),
  )


def step_runner(row: Row, problem: Problem) -> Runner:
  """A :class:`Runner` of one acting step: every environment's first rollout step, the carry in and out."""
  rollout = make_rollout(problem)
  args = (
    row.params,
    jnp.asarray(rollout.initial_carry),
    jnp.asarray(problem.inputs[:, 0]),
    jnp.asarray(rollout.resets[:, 0]),
  )
  jitted = jax.jit(row.act)
  return Runner(
    call=lambda: jax.block_until_ready(jitted(*args)),
    to_numpy=lambda carry: {"carry": np.asarray(carry, np.float32)},
    memory_bytes=lambda: jax_memory_bytes(jitted, args),
    framework="jax",
    hlo=lambda: jitted.lower(*args).compile().as_text(),
  )


def _runner(row: Row, problem: Problem, mode: Mode) -> Runner:
  return update_runner(row, problem) if mode is Mode.POLICY_UPDATE else step_runner(row, problem)


def _peer(make_row: Callable[[Problem], Row]):
  def factory(problem: Problem, mode: Mode) -> Runner:
    _check_problem(problem)
    return _runner(make_row(problem), problem, mode)

  return factory


register_peer(FLAX_CELL, model=MODEL, modes=POLICY_MODES)(_peer(_flax_row))
register_peer(JAXGRU_CELL, model=MODEL, modes=POLICY_MODES)(_peer(_jaxgru_cell_row))
register_peer(JAXGRU_RESETS, model=MODEL, modes=POLICY_MODES)(
  _peer(functools.partial(_jaxgru_layer_row, with_resets=True))
)
register_peer(JAXGRU_NO_RESETS, model=MODEL_NO_RESETS, modes=POLICY_MODES)(
  _peer(functools.partial(_jaxgru_layer_row, with_resets=False))
)
for _mode in POLICY_MODES:
  register_baselines(_mode, (FLAX_CELL, JAXGRU_NO_RESETS))  # the goals: x Flax's cell, x the layer without resets


def policy_reference(problem: Problem, mode: Mode, *, apply_resets: bool = True) -> dict[str, np.ndarray]:
  """Flax's cell under ``nn.scan`` (the first row's model), float32, highest matmul precision.

  Args:
    problem: the shared weights and inputs.
    mode: ``Mode.POLICY_UPDATE`` or ``Mode.POLICY_STEP``.
    apply_resets: ``False``: the same GRU never reset (the reference of ``policy.jaxgru_no_resets``).

  Returns:
    The flat result dict of the rows' ``to_numpy``.
  """
  _check_problem(problem)
  with jax.default_matmul_precision("highest"):
    runner = _runner(_flax_row(problem, apply_resets), problem, mode)
    return dict(runner.to_numpy(runner.call()))


register_reference(MODEL)(policy_reference)
register_reference(MODEL_NO_RESETS)(functools.partial(policy_reference, apply_resets=False))
