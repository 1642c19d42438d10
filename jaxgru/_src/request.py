"""The run request of one GRU direction: checked once, padding zeroed, resets and dtype decided.

:func:`prepare_direction` makes a :class:`Direction` at the boundary of every
runner (the scan and scan+remat runners in :mod:`jaxgru._src.scan`, the
hand-written backward, the Pallas kernel) and of :func:`jaxgru.gru_scan`;
the padding mask (:func:`valid_steps`) and the reset rule (:func:`restarts`)
are written here once, for them and for minGRU. Shapes follow the legend in
:mod:`jaxgru.gates`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgru._src import dtypes
from jaxgru._src import gates
from jaxgru._src import validation

Array = jax.Array


class Remat(str, enum.Enum):
  """What :func:`jaxgru.gru_scan_remat` stores for the backward pass (``jaxgru.GRU(remat=...)``).

  ``NONE`` keeps every step's activations (and the ``[T, B, 3H]`` projection);
  ``STEP`` keeps only the state before each step and recomputes the step's
  input projection and gates in the backward pass; ``SEGMENTS`` keeps only the
  state at the start of each segment of ``remat_segment`` steps and recomputes
  the segment (about ``T / S + S`` steps of activations instead of ``T``).
  """

  NONE = "none"
  STEP = "step"
  SEGMENTS = "segments"


def as_remat(remat: str | Remat) -> Remat:
  """Returns ``remat`` as a :class:`Remat`, raising ``ValueError`` if unknown."""
  return gates.as_choice(Remat, remat, "remat mode")


class Direction(NamedTuple):
  """One direction's run request, made once by :func:`prepare_direction`: checked, padding zeroed, dtype decided.

  Every runner (:func:`jaxgru._src.scan.run_scan`, :func:`~jaxgru._src.scan.run_remat`,
  :func:`jaxgru._src.backward.run_custom_vjp`, :func:`jaxgru._src.pallas_gru.run_pallas`)
  takes it whole and reads what it needs; ``d._replace(x=projection, projected=True)``
  is the one change made after it is checked (the hoisted input projection).
  """

  params: gates.Params  # the direction's parameter arrays
  x: Array  # [T, B, I] inputs, or [T, B, 3H] projections when projected; zero at padded steps
  h0: Array  # [B, H] initial state, carry dtype
  projected: bool  # x is the input projection
  variant: gates.Variant  # where the reset gate applies
  seq_lengths: Array | None  # [B] int32 in [0, T], or None
  dtype: jnp.dtype  # compute dtype (jaxgru._src.dtypes.compute_dtype)
  reverse: bool  # run from t = T - 1 down to 0
  unroll: int  # scan iterations unrolled
  restart: Array | None = None  # [T, B] bool: step t starts from h_reset (see restarts); None: no resets
  h_reset: Array | None = None  # [B, H] carry dtype: the state a reset restores
  recurrent_mask: Array | None = None  # [B, H] recurrent-dropout mask, or None
  remat: Remat = Remat.NONE  # what the backward pass recomputes (scan only)
  remat_segment: int | None = None  # steps per checkpointed segment with Remat.SEGMENTS
  gate_fn: Callable = jax.nn.sigmoid  # the gates' activation
  activation_fn: Callable = jnp.tanh  # the candidate's activation


def valid_steps(seq_lengths: Array, num_steps: int) -> Array:
  """The padding mask of every implementation: ``[T, B]`` booleans, true where ``t < seq_lengths[b]``.

  >>> valid_steps(jnp.array([3, 1]), 4).astype(int).T.tolist()
  [[1, 1, 1, 0], [1, 0, 0, 0]]
  """
  return jnp.arange(num_steps, dtype=seq_lengths.dtype)[:, None] < seq_lengths[None, :]


def zero_padding(x: Array, seq_lengths: Array) -> tuple[Array, Array]:
  """``(x with its padded steps zeroed, valid [T, B, 1])`` for time-major ``x [T, B, F]``.

  Padding may hold anything (NaN, inf): zeroing it keeps it out of the
  gradients too (``0 * NaN`` would be NaN in every weight gradient), as
  PyTorch's packed sequences never look at padding.
  """
  valid = valid_steps(seq_lengths, x.shape[0])[..., None]
  return jnp.where(valid, x, jnp.zeros_like(x)), valid


def restarts(resets: Array, seq_lengths: Array | None, reverse: bool) -> Array:
  """``[T, B]`` booleans: where a direction's step ``t`` starts from the reset state instead of its carry.

  ``resets[t, b]`` marks the first step of an episode. Forward, step ``t``
  starts afresh where ``resets[t]``. In reverse each episode is run backward
  from its own last step, so step ``t`` starts afresh where step ``t + 1``
  begins the next episode. Either way a direction sees the same segments and
  runs each from the reset state. Resets at padded steps are ignored.

  >>> r = jnp.array([[False], [False], [True], [False]])  # [T, B]: a new episode at t = 2
  >>> restarts(r, None, False)[:, 0].tolist(), restarts(r, None, True)[:, 0].tolist()
  ([False, False, True, False], [False, True, False, False])
  """
  if seq_lengths is not None:
    resets = resets & valid_steps(seq_lengths, resets.shape[0])
  if not reverse:
    return resets
  return jnp.concatenate([resets[1:], jnp.zeros_like(resets[:1])], axis=0)


def prepare_resets(resets, reset_carry, h0: Array, seq_lengths: Array | None, reverse: bool, *, num_steps: int):
  """Checks episode resets once per run: ``(restart [T, B] bool, h_reset [B, H])``, or ``(None, None)``.

  ``restart`` is :func:`restarts` of the checked ``resets [T, B]``; ``h_reset``
  is ``reset_carry`` in the carry dtype, ``h0`` when not given.

  Raises:
    TypeError, ValueError: resets of the wrong shape or dtype, a mis-shaped
      ``reset_carry``, or a ``reset_carry`` without resets.
  """
  if resets is None:
    if reset_carry is not None:
      raise ValueError("reset_carry was given without resets; pass resets [T, B] to say where episodes start")
    return None, None
  restart = restarts(validation.check_resets(resets, (num_steps, h0.shape[0])), seq_lengths, reverse)
  if reset_carry is None:
    return restart, h0
  h_reset = validation.check_array("reset_carry", reset_carry, rank=2, legend="[B, H]")
  if h_reset.shape != h0.shape:
    raise ValueError(f"reset_carry must have the shape of h0, [B, H]={tuple(h0.shape)}; got {tuple(h_reset.shape)}")
  return restart, h_reset.astype(h0.dtype)


def prepare_direction(
  params: gates.Params,
  x,
  h0,
  *,
  projected: bool,
  variant,
  seq_lengths,
  reverse,
  unroll,
  dtype,
  resets=None,
  reset_carry=None,
  recurrent_mask=None,
  remat=Remat.NONE,
  remat_segment=None,
  gate_fn=jax.nn.sigmoid,
  activation_fn=jnp.tanh,
) -> Direction:
  """Checks one direction's arguments, zeroes the padding of ``x`` (:func:`zero_padding`) and decides the
  compute dtype: the one place a run request is made.

  Args:
    params: one direction's parameters.
    x: ``[T, B, 3H]`` input projections when ``projected``, else ``[T, B, I]``.
    h0: ``[B, H]`` initial state.
    projected: whether ``x`` is the input projection.
    variant, seq_lengths, reverse, unroll, dtype, resets, reset_carry, recurrent_mask, gate_fn,
      activation_fn: as :func:`jaxgru.gru_scan`.
    remat, remat_segment: as :func:`jaxgru.gru_scan_remat` (the segment is
      checked against ``T`` by the runner that uses it).

  Raises:
    TypeError, ValueError: naming the argument, what was wrong and what was expected.
  """
  x, h0 = validation.check_recurrence(params, x, h0, projected=projected)
  validation.check_positive_int("unroll", unroll)
  validation.check_bool("reverse", reverse)
  validation.check_floating("dtype", dtype)
  if seq_lengths is not None:
    seq_lengths = validation.check_seq_lengths(seq_lengths, x.shape[1], x.shape[0])
    x, _ = zero_padding(x, seq_lengths)
  restart, h_reset = prepare_resets(resets, reset_carry, h0, seq_lengths, reverse, num_steps=x.shape[0])
  kernels = (params["recurrent_kernel"],) + (() if projected else (params["input_kernel"],))
  compute = dtypes.compute_dtype(dtype, x, h0, *kernels)
  return Direction(
    params,
    x,
    h0,
    projected,
    gates.as_variant(variant),
    seq_lengths,
    compute,
    bool(reverse),
    int(unroll),
    restart,
    h_reset,
    recurrent_mask,
    as_remat(remat),
    remat_segment,
    gate_fn,
    activation_fn,
  )
