"""Pure scan runners: one GRU direction unrolled over time with ``jax.lax.scan``.

Shapes follow the legend in :mod:`jaxgru.gates`. Everything here is a pure
function of parameters and arrays, differentiated by JAX's autodiff (forward
and reverse mode); :mod:`jaxgru.dispatch` chooses between these and the other
implementations for :class:`jaxgru.GRU`.
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxgru import gates
from jaxgru import validation

Array = jax.Array


class Remat(str, enum.Enum):
  """What :func:`gru_scan_remat` stores for the backward pass (``jaxgru.GRU(remat=...)``).

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


class RunnerOptions(NamedTuple):
  """The keyword options every runner takes (:func:`gru_scan`, :func:`jaxgru.backward.gru_scan_custom_vjp`, ...)."""

  variant: gates.Variant = gates.Variant.RESET_AFTER  # "reset_after" (PyTorch) or "reset_before" (Cho et al.)
  seq_lengths: Array | None = None  # [B] integer lengths in [0, T]
  reverse: bool = False  # run from the last step to the first
  unroll: int = 1  # steps per loop iteration
  dtype: Any = None  # compute dtype of the step (None: promote)


def prepare_run(params: gates.Params, x, h0, options: dict, *, projected: bool) -> tuple[Array, Array, RunnerOptions]:
  """Checks a runner's arguments and options, and zeroes the padding of ``x`` (:func:`gates.zero_padding`).

  Args:
    params: one direction's parameters.
    x: ``[T, B, 3H]`` input projections when ``projected``, else ``[T, B, I]``.
    h0: ``[B, H]`` initial state.
    options: the runner's keyword options (:class:`RunnerOptions` fields).
    projected: whether ``x`` is the input projection.

  Returns:
    ``(x, h0, options)`` with ``seq_lengths`` an int32 array (or ``None``).

  Raises:
    TypeError: an unknown option, a non-bool ``reverse``, non-integer lengths.
    ValueError: mis-shaped arrays or bad values, naming the argument.
  """
  unknown = sorted(set(options) - set(RunnerOptions._fields))
  if unknown:
    raise TypeError(f"unknown keyword argument(s) {unknown}; expected some of {list(RunnerOptions._fields)}")
  opts = RunnerOptions(**options)
  x, h0 = validation.check_recurrence(params, x, h0, projected=projected)
  validation.check_positive_int("unroll", opts.unroll)
  validation.check_floating("dtype", opts.dtype)
  lengths = opts.seq_lengths
  if lengths is not None:
    lengths = validation.check_seq_lengths(lengths, x.shape[1], x.shape[0])
  opts = opts._replace(
      variant=gates.as_variant(opts.variant), reverse=validation.check_bool("reverse", opts.reverse), seq_lengths=lengths
  )
  return gates.zero_padding(x, lengths), h0, opts


def gru_scan(
    params: gates.Params,
    x_proj: Array,
    h0: Array,
    *,
    recurrent_mask: Array | None = None,
    gate_fn=jax.nn.sigmoid,
    activation_fn=jnp.tanh,
    **options,
) -> tuple[Array, Array]:
  r"""Runs the GRU recurrence over a time-major sequence of input projections.

  With ``seq_lengths``, step ``t`` of sequence ``b`` is valid when
  ``t < seq_lengths[b]``; padded steps output zeros and leave the carry
  unchanged. In reverse, the scan walks ``t = T-1, ..., 0``, so a sequence's
  state stays at ``h0`` through its padding and its recurrence starts at its
  last valid step, as PyTorch's ``pack_padded_sequence`` does.

  .. math:: h_t = \mathrm{GRU}(h_{t-1}, x_t), \quad y_t = h_t

  Args:
    params: GRU parameters (``recurrent_kernel [H, 3H]``, ``recurrent_bias [3H]``
      are used here; the input half is already in ``x_proj``).
    x_proj: ``[T, B, 3H]`` input projections from :func:`gates.input_projection`.
    h0: ``[B, H]`` initial state; its dtype is the carry dtype.
    recurrent_mask: optional ``[B, H]`` recurrent-dropout mask (zeros and
      ``1 / (1 - p)``), the same at every step: it multiplies ``h_{t-1}`` where
      it enters the recurrent products, never the carry itself.
    gate_fn, activation_fn: the gate and candidate activations (sigmoid and
      tanh by default), as in Flax's cells.
    **options: :class:`RunnerOptions`: ``variant`` (``"reset_after"`` or
      ``"reset_before"``), ``seq_lengths`` (optional ``[B]`` integer lengths
      in ``[0, T]``; whatever the padded steps of ``x_proj`` hold, NaN
      included, reaches neither outputs nor gradients), ``reverse``,
      ``unroll`` (steps per ``lax.scan`` iteration), ``dtype`` (compute dtype
      of the step; ``None`` promotes).

  Returns:
    ``(outputs [T, B, H], h_last [B, H])``; ``outputs`` has the carry dtype and
    ``h_last`` is the state after each sequence's last valid step (after step 0
    when ``reverse``).

  Raises:
    ValueError, TypeError: mis-shaped or non-floating arrays, or bad
      ``seq_lengths`` (the message names the argument).

  >>> H, I, T, B = 2, 3, 5, 1
  >>> p = {"input_kernel": jnp.ones((I, 3 * H)), "recurrent_kernel": jnp.zeros((H, 3 * H)),
  ...      "input_bias": jnp.zeros(3 * H), "recurrent_bias": jnp.zeros(3 * H)}
  >>> x_proj = gates.input_projection(p, jnp.zeros((T, B, I)))  # [T, B, 3H]
  >>> ys, h_last = gru_scan(p, x_proj, jnp.ones((B, H)))  # z = 1/2, n = 0: h halves
  >>> ys[:, 0, 0]
  Array([0.5    , 0.25   , 0.125  , 0.0625 , 0.03125], dtype=float32)
  """
  x_proj, h0, (variant, seq_lengths, reverse, unroll, dtype) = prepare_run(params, x_proj, h0, options, projected=True)
  dtype = dtype or jnp.result_type(x_proj, h0, params["recurrent_kernel"])
  blocks = gates.recurrent_blocks(params, variant, dtype)  # once, outside the loop
  # Three per-gate arrays: slicing one wide [T, B, 3H] array inside the loop
  # is several times slower on XLA:CPU (experiments/results/speed_notes.md).
  xs = gates.split_gates(x_proj)  # 3 x [T, B, H]
  activations = dict(recurrent_mask=recurrent_mask, gate_fn=gate_fn, activation_fn=activation_fn)
  step = lambda h, x_t: gates.step(blocks, h, x_t, variant, dtype, **activations)[0]  # noqa: E731

  if seq_lengths is None:

    def body(h, x_t):
      h = step(h, x_t)
      return h, h

    h_last, ys = jax.lax.scan(body, h0, xs, reverse=reverse, unroll=unroll)
    return ys, h_last

  def masked_body(h, inp):
    x_t, t = inp
    valid = gates.valid_rows(t, seq_lengths)  # [B, 1]
    return gates.keep_valid(valid, step(h, x_t), h)

  steps = jnp.arange(x_proj.shape[0], dtype=seq_lengths.dtype)
  h_last, ys = jax.lax.scan(masked_body, h0, (xs, steps), reverse=reverse, unroll=unroll)
  return ys, h_last


def check_remat(remat: str | Remat, num_steps: int, segment: int | None, unroll: int = 1) -> int:
  """Validates a remat setting for ``T = num_steps`` and returns the checkpointed block length.

  ``STEP`` checkpoints blocks of ``unroll`` steps, so ``unroll`` must divide
  ``T``; ``SEGMENTS`` checkpoints blocks of ``segment`` steps, which must
  divide ``T`` and be a multiple of ``unroll``. ``segment=None`` picks the
  largest such divisor of ``T`` not above ``sqrt(T)`` (memory about
  ``T / S + S`` steps).

  Raises:
    ValueError: with the expected values, when the blocks would not tile ``T``.

  >>> check_remat("segments", 4096, None), check_remat("segments", 100, 20, unroll=4)
  (64, 20)
  """
  remat = as_remat(remat)
  if remat is Remat.NONE:
    return num_steps
  if remat is Remat.STEP:
    if num_steps % unroll:
      raise ValueError(
          f"remat='step' checkpoints blocks of unroll={unroll} steps, which must divide the "
          f"sequence length T={num_steps}; use an unroll in {_divisors(num_steps)}"
      )
    return unroll
  if segment is None:
    fits = [d for d in _divisors(num_steps) if d * d <= num_steps and d % unroll == 0]
    if not fits:
      raise ValueError(
          f"remat='segments' found no segment length that divides T={num_steps} and is a "
          f"multiple of unroll={unroll}; pass remat_segment or change unroll"
      )
    return max(fits)
  if num_steps % segment or segment % unroll:
    raise ValueError(
        f"remat_segment={segment} must divide the sequence length T={num_steps} and be a "
        f"multiple of unroll={unroll}; divisors of T: {_divisors(num_steps)}"
    )
  return segment


def _divisors(n: int) -> list[int]:
  return [d for d in range(1, n + 1) if n % d == 0]


def gru_scan_remat(
    params: gates.Params,
    inputs: Array,
    h0: Array,
    *,
    remat: str | Remat,
    remat_segment: int | None = None,
    recurrent_mask: Array | None = None,
    gate_fn=jax.nn.sigmoid,
    activation_fn=jnp.tanh,
    **options,
) -> tuple[Array, Array]:
  """:func:`gru_scan` over raw inputs, rematerialising activations in the backward pass.

  Unlike :func:`gru_scan` this takes the inputs, not their projection: the
  input projection of a block is recomputed with the block, so neither the
  ``[T, B, 3H]`` projection nor its cotangent is ever held for all steps at
  once (most of the memory saving; see ``experiments/results/extensions.md``).
  Values and gradients equal those of :func:`gru_scan` up to float32 summation
  order.

  Args:
    params: GRU parameters (all four arrays).
    inputs: ``[T, B, I]`` inputs.
    h0: ``[B, H]`` initial state (carry dtype).
    remat: ``"step"`` or ``"segments"`` (see :class:`Remat`); ``"none"`` runs
      the projection and :func:`gru_scan` without checkpoints.
    remat_segment: steps per checkpointed segment for ``"segments"``; must
      divide ``T`` (``None``: see :func:`check_remat`).
    recurrent_mask, gate_fn, activation_fn, **options: as in :func:`gru_scan`.

  Returns:
    ``(outputs [T, B, H], h_last [B, H])`` as :func:`gru_scan`.

  Raises:
    ValueError: blocks that do not tile ``T`` (:func:`check_remat`).

  >>> H, I, T, B = 4, 3, 12, 2
  >>> p = {"input_kernel": jnp.full((I, 3 * H), 0.1), "recurrent_kernel": jnp.full((H, 3 * H), 0.1),
  ...      "input_bias": jnp.zeros(3 * H), "recurrent_bias": jnp.zeros(3 * H)}
  >>> x, h0 = jnp.ones((T, B, I)), jnp.zeros((B, H))
  >>> ys, _ = gru_scan_remat(p, x, h0, remat="segments", remat_segment=4)
  >>> ref, _ = gru_scan(p, gates.input_projection(p, x), h0)
  >>> bool(jnp.allclose(ys, ref))
  True
  """
  remat = as_remat(remat)
  inputs, h0, (variant, seq_lengths, reverse, unroll, dtype) = prepare_run(params, inputs, h0, options, projected=False)
  num_steps, batch, features = inputs.shape
  block = check_remat(remat, num_steps, remat_segment, unroll)
  run = dict(
      variant=variant, reverse=reverse, dtype=dtype, recurrent_mask=recurrent_mask, gate_fn=gate_fn, activation_fn=activation_fn
  )
  if remat is Remat.NONE:
    x_proj = gates.input_projection(params, inputs, dtype)
    return gru_scan(params, x_proj, h0, seq_lengths=seq_lengths, unroll=unroll, **run)

  if remat is Remat.STEP:
    # One checkpoint per scan iteration: only h_{t-1} and x_t are stored; the
    # projection, gates and their cotangents live for one step.
    inner_len, inner_unroll, outer_unroll = 1, 1, unroll
  else:
    inner_len, inner_unroll, outer_unroll = block, unroll, 1

  @jax.checkpoint
  def block_fn(h, inp):
    x_blk, offset = inp  # [S, B, I], ()
    x_proj = gates.input_projection(params, x_blk, dtype)  # [S, B, 3H]
    # Lengths relative to the block start: step s of the block is global step offset + s.
    lengths = None if seq_lengths is None else seq_lengths - offset.astype(seq_lengths.dtype)
    ys, h = gru_scan(params, x_proj, h, seq_lengths=lengths, unroll=inner_unroll, **run)
    return h, ys

  num_blocks = num_steps // inner_len
  x_blocks = inputs.reshape(num_blocks, inner_len, batch, features)
  offsets = jnp.arange(num_blocks, dtype=jnp.int32) * inner_len
  h_last, ys = jax.lax.scan(block_fn, h0, (x_blocks, offsets), reverse=reverse, unroll=outer_unroll)
  return ys.reshape(num_steps, batch, -1), h_last
