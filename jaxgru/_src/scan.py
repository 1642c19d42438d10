"""Pure scan runners: one GRU direction unrolled over time with ``jax.lax.scan``.

Shapes follow the legend in :mod:`jaxgru.gates`. Everything here is a pure
function of parameters and arrays, differentiated by JAX's autodiff (forward
and reverse mode). :func:`jaxgru._src.request.prepare_direction` checks a request once,
:func:`loop` is the one padded time loop (also the custom-VJP forward's), and
the ``run_*`` functions run prepared requests for ``dispatch.run_direction``;
:func:`gru_scan` and :func:`gru_scan_remat` are their checked public forms.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgru._src import gates
from jaxgru._src import request

Array = jax.Array


def state_entering(h: Array, restart_t: Array | None, h_reset: Array | None) -> Array:
  """The reset rule of every implementation: the state a step starts from.

  Where ``restart_t [B]`` holds (an episode starts), the step starts from
  ``h_reset [B, H]`` instead of the carry ``h [B, H]``, so no gradient flows
  through it into earlier steps; ``restart_t=None`` (no resets) returns ``h``.
  """
  return h if restart_t is None else jnp.where(restart_t[:, None], h_reset, h)


def keep_valid(valid: Array, h_new: Array, h: Array) -> tuple[Array, Array]:
  """The padding rule of every implementation: ``(carry, output)`` of a step.

  A padded step (``valid`` false, ``[B, 1]``) leaves the carry unchanged and
  outputs zeros, as PyTorch's packed sequences do.
  """
  return jnp.where(valid, h_new, h), jnp.where(valid, h_new, jnp.zeros_like(h_new))


def loop(
  blocks: tuple[tuple, tuple],
  xs,
  h0: Array,
  *,
  variant: gates.Variant,
  dtype,
  seq_lengths: Array | None,
  reverse: bool,
  unroll: int,
  keep: bool = False,
  input_weights: tuple[Array, Array] | None = None,
  restart: Array | None = None,
  h_reset: Array | None = None,
  recurrent_mask: Array | None = None,
  gate_fn=jax.nn.sigmoid,
  activation_fn=jnp.tanh,
):
  """The one padded time loop: :func:`jaxgru.gates.step` under ``lax.scan``, for the scan and the custom-VJP forward.

  Args:
    blocks: :func:`jaxgru.gates.recurrent_blocks` (made once, outside the loop).
    xs: per-gate projections ``(x_r, x_z, x_n)``, each ``[T, B, H]``, or the
      raw inputs ``[T, B, I]`` when ``input_weights`` is given.
    h0: ``[B, H]`` initial state (carry dtype).
    variant, dtype: as :func:`jaxgru.gates.step`.
    seq_lengths: ``[B]`` int32 lengths or ``None``; a padded step keeps the
      carry and outputs zeros (:func:`keep_valid`).
    reverse, unroll: as ``lax.scan``.
    keep: also return each step's starting state and activations (what the
      hand-written backward needs).
    input_weights: ``(input_kernel [I, 3H], input_bias [3H])`` in ``dtype``:
      project each step's input inside the loop.
    restart, h_reset: ``[T, B]`` booleans (:func:`restarts`) and the ``[B, H]``
      state a step starts from where ``restart`` holds (episode resets), or ``None``.
    recurrent_mask, gate_fn, activation_fn: as :func:`jaxgru.gates.step`.

  Returns:
    ``(ys [T, B, H], h_last [B, H])``, and with ``keep`` a third element: the
    per-step ``(h_prev, r, z, n, aux)``, each ``[T, B, H]`` (``h_prev``: the
    state the step started from, after any reset).
  """
  masked = seq_lengths is not None

  def body(h, inp):
    # Per-step inputs and masks enter here, once: valid_t [B] is step t's column of valid_steps.
    x_t, valid_t, restart_t = inp
    if input_weights is not None:  # gates.input_projection of this step
      w_i, b_i = input_weights
      x_t = gates.split_gates(jnp.matmul(x_t.astype(dtype), w_i) + b_i)
    h_in = state_entering(h, restart_t, h_reset)  # an episode's first step starts from the reset state
    h_new, acts = gates.step(
      blocks, h_in, x_t, variant, dtype, recurrent_mask=recurrent_mask, gate_fn=gate_fn, activation_fn=activation_fn
    )
    y = h_new
    if masked:  # restart_t is false at padded steps: the carry h passes through
      h_new, y = keep_valid(valid_t[:, None], h_new, h)
    return h_new, ((y, h_in) + tuple(acts) if keep else y)

  num_steps = jax.tree.leaves(xs)[0].shape[0]
  inputs = (xs, request.valid_steps(seq_lengths, num_steps) if masked else None, restart)
  h_last, out = jax.lax.scan(body, h0, inputs, reverse=reverse, unroll=unroll)
  if not keep:
    return out, h_last
  ys, *acts = out
  return ys, h_last, tuple(acts)


def run_scan(d: request.Direction) -> tuple[Array, Array]:
  """The ``"scan"`` runner on a request with projected inputs (``d.x [T, B, 3H]``); autodiff differentiates it."""
  blocks = gates.recurrent_blocks(d.params, d.variant, d.dtype)  # once, outside the loop
  # Three per-gate arrays: slicing one wide [T, B, 3H] array inside the loop
  # is several times slower on XLA:CPU (experiments/results/speed_notes.md).
  xs = gates.split_gates(d.x)  # 3 x [T, B, H]
  return loop(
    blocks,
    xs,
    d.h0,
    variant=d.variant,
    dtype=d.dtype,
    seq_lengths=d.seq_lengths,
    reverse=d.reverse,
    unroll=d.unroll,
    restart=d.restart,
    h_reset=d.h_reset,
    recurrent_mask=d.recurrent_mask,
    gate_fn=d.gate_fn,
    activation_fn=d.activation_fn,
  )


def gru_scan(
  params: gates.Params,
  x_proj: Array,
  h0: Array,
  *,
  variant: str | gates.Variant = gates.Variant.RESET_AFTER,
  seq_lengths: Array | None = None,
  reverse: bool = False,
  unroll: int = 1,
  dtype=None,
  resets: Array | None = None,
  reset_carry: Array | None = None,
  recurrent_mask: Array | None = None,
  gate_fn=jax.nn.sigmoid,
  activation_fn=jnp.tanh,
) -> tuple[Array, Array]:
  r"""Runs the GRU recurrence over a time-major sequence of input projections.

  >>> H, I, T, B = 2, 3, 5, 1
  >>> p = {"input_kernel": jnp.ones((I, 3 * H)), "recurrent_kernel": jnp.zeros((H, 3 * H)),
  ...      "input_bias": jnp.zeros(3 * H), "recurrent_bias": jnp.zeros(3 * H)}
  >>> x_proj = gates.input_projection(p, jnp.zeros((T, B, I)))  # [T, B, 3H]
  >>> ys, h_last = gru_scan(p, x_proj, jnp.ones((B, H)))  # z = 1/2, n = 0: h halves
  >>> ys[:, 0, 0]
  Array([0.5    , 0.25   , 0.125  , 0.0625 , 0.03125], dtype=float32)

  With ``seq_lengths``, step ``t`` of sequence ``b`` is valid when
  ``t < seq_lengths[b]``; padded steps output zeros and leave the carry
  unchanged. In reverse, the scan walks ``t = T-1, ..., 0``, so a sequence's
  state stays at ``h0`` through its padding and its recurrence starts at its
  last valid step, as PyTorch's ``pack_padded_sequence`` does.

  Args:
    params: GRU parameters (``recurrent_kernel [H, 3H]``, ``recurrent_bias [3H]``
      are used here; the input half is already in ``x_proj``).
    x_proj: ``[T, B, 3H]`` input projections from :func:`jaxgru.gates.input_projection`.
    h0: ``[B, H]`` initial state; its dtype is the carry dtype.
    variant: ``"reset_after"`` (PyTorch) or ``"reset_before"`` (Cho et al.).
    seq_lengths: optional ``[B]`` integer lengths in ``[0, T]``; whatever the
      padded steps of ``x_proj`` hold, NaN included, reaches neither outputs
      nor gradients.
    reverse: run from the last step to the first.
    unroll: steps per ``lax.scan`` iteration.
    dtype: compute dtype of the step; ``None`` promotes ``x_proj``, ``h0`` and
      the kernel (the one dtype rule of the library).
    resets: optional ``[T, B]`` booleans, true where an episode starts: the
      state entering step ``t`` of sequence ``b`` is ``reset_carry[b]``
      instead of the previous step's state, and no gradient flows through a
      reset into earlier steps. With ``reverse``, each episode runs backward
      from its own last step (:func:`restarts`). Resets at padded steps are ignored.
    reset_carry: optional ``[B, H]`` state a reset restores; ``h0`` by default.
    recurrent_mask: optional ``[B, H]`` recurrent-dropout mask (zeros and
      ``1 / (1 - p)``), the same at every step: it multiplies ``h_{t-1}`` where
      it enters the recurrent products, never the carry itself.
    gate_fn, activation_fn: the gate and candidate activations (sigmoid and
      tanh by default), as in Flax's cells.

  Returns:
    ``(outputs [T, B, H], h_last [B, H])``; ``outputs`` has the carry dtype and
    ``h_last`` is the state after each sequence's last valid step (after step 0
    when ``reverse``).

  Raises:
    ValueError, TypeError: mis-shaped or non-floating arrays, or bad
      ``seq_lengths`` (the message names the argument).
  """
  return run_scan(
    request.prepare_direction(
      params,
      x_proj,
      h0,
      projected=True,
      variant=variant,
      seq_lengths=seq_lengths,
      reverse=reverse,
      unroll=unroll,
      dtype=dtype,
      resets=resets,
      reset_carry=reset_carry,
      recurrent_mask=recurrent_mask,
      gate_fn=gate_fn,
      activation_fn=activation_fn,
    )
  )


def check_remat(remat: str | request.Remat, num_steps: int, segment: int | None, unroll: int = 1) -> int:
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
  remat = request.as_remat(remat)
  if remat is request.Remat.NONE:
    return num_steps
  if remat is request.Remat.STEP:
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


def run_remat(d: request.Direction) -> tuple[Array, Array]:
  """The ``"scan"`` runner with checkpoints (``d.remat``), on raw inputs ``d.x [T, B, I]`` (see :func:`gru_scan_remat`)."""
  num_steps, batch, features = d.x.shape
  block = check_remat(d.remat, num_steps, d.remat_segment, d.unroll)
  if d.remat is request.Remat.NONE:
    return run_scan(d._replace(x=gates.input_projection(d.params, d.x, d.dtype), projected=True))
  if d.remat is request.Remat.STEP:
    # One checkpoint per scan iteration: only h_{t-1} and x_t are stored; the
    # projection, gates and their cotangents live for one step.
    inner_len, inner_unroll, outer_unroll = 1, 1, d.unroll
  else:
    inner_len, inner_unroll, outer_unroll = block, d.unroll, 1

  @jax.checkpoint
  def block_fn(h, inp):
    x_blk, offset, restart_blk = inp  # [S, B, I], (), [S, B] or None
    x_proj = gates.input_projection(d.params, x_blk, d.dtype)  # [S, B, 3H]
    # Lengths relative to the block start: step s of the block is global step offset + s.
    lengths = None if d.seq_lengths is None else d.seq_lengths - offset
    ys, h = run_scan(
      d._replace(x=x_proj, projected=True, h0=h, seq_lengths=lengths, unroll=inner_unroll, restart=restart_blk)
    )
    return h, ys

  num_blocks = num_steps // inner_len
  x_blocks = d.x.reshape(num_blocks, inner_len, batch, features)
  offsets = jnp.arange(num_blocks, dtype=jnp.int32) * inner_len
  restart_blocks = None if d.restart is None else d.restart.reshape(num_blocks, inner_len, batch)
  h_last, ys = jax.lax.scan(block_fn, d.h0, (x_blocks, offsets, restart_blocks), reverse=d.reverse, unroll=outer_unroll)
  return ys.reshape(num_steps, batch, -1), h_last


def gru_scan_remat(
  params: gates.Params,
  inputs: Array,
  h0: Array,
  *,
  remat: str | request.Remat,
  remat_segment: int | None = None,
  variant: str | gates.Variant = gates.Variant.RESET_AFTER,
  seq_lengths: Array | None = None,
  reverse: bool = False,
  unroll: int = 1,
  dtype=None,
  resets: Array | None = None,
  reset_carry: Array | None = None,
  recurrent_mask: Array | None = None,
  gate_fn=jax.nn.sigmoid,
  activation_fn=jnp.tanh,
) -> tuple[Array, Array]:
  """:func:`gru_scan` over raw inputs, rematerialising activations in the backward pass.

  >>> H, I, T, B = 4, 3, 12, 2
  >>> p = {"input_kernel": jnp.full((I, 3 * H), 0.1), "recurrent_kernel": jnp.full((H, 3 * H), 0.1),
  ...      "input_bias": jnp.zeros(3 * H), "recurrent_bias": jnp.zeros(3 * H)}
  >>> x, h0 = jnp.ones((T, B, I)), jnp.zeros((B, H))
  >>> ys, _ = gru_scan_remat(p, x, h0, remat="segments", remat_segment=4)
  >>> ref, _ = gru_scan(p, gates.input_projection(p, x), h0)
  >>> bool(jnp.allclose(ys, ref))
  True

  Unlike :func:`gru_scan` this takes the inputs, not their projection: the
  input projection of a block is recomputed with the block, so neither the
  ``[T, B, 3H]`` projection nor its cotangent is ever held for all steps at
  once (most of the memory saving; see ``experiments/results/layer_options.md``).
  Values and gradients equal those of :func:`gru_scan` up to float32 summation
  order.

  The other arguments, ``variant``, ``seq_lengths``, ``reverse``, ``unroll``, ``dtype``,
  ``resets``, ``reset_carry``, ``recurrent_mask``, ``gate_fn`` and ``activation_fn``, are as in
  :func:`gru_scan` (``dtype=None`` also promotes the input kernel).

  Args:
    params: GRU parameters (all four arrays).
    inputs: ``[T, B, I]`` inputs.
    h0: ``[B, H]`` initial state (carry dtype).
    remat: ``"step"`` or ``"segments"`` (see :class:`Remat`); ``"none"`` runs
      the projection and :func:`gru_scan` without checkpoints.
    remat_segment: steps per checkpointed segment for ``"segments"``; must
      divide ``T`` (``None``: see :func:`check_remat`).

  Returns:
    ``(outputs [T, B, H], h_last [B, H])`` as :func:`gru_scan`.

  Raises:
    ValueError: blocks that do not tile ``T`` (:func:`check_remat`).
  """
  return run_remat(
    request.prepare_direction(
      params,
      inputs,
      h0,
      projected=False,
      variant=variant,
      seq_lengths=seq_lengths,
      reverse=reverse,
      unroll=unroll,
      dtype=dtype,
      resets=resets,
      reset_carry=reset_carry,
      recurrent_mask=recurrent_mask,
      remat=remat,
      remat_segment=remat_segment,
      gate_fn=gate_fn,
      activation_fn=activation_fn,
    )
  )
