"""Pure scan runners: one GRU direction unrolled over time with ``jax.lax.scan``.

Shapes follow the legend in :mod:`jaxgru.gates`. Everything here is a pure
function of parameters and arrays; :class:`jaxgru.GRU` declares the parameters
and calls :func:`gru_scan` once per layer and direction.
"""

from __future__ import annotations

import enum

import jax
import jax.numpy as jnp

from jaxgru import custom_vjp
from jaxgru import gates
from jaxgru import pallas_gru

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
    recurrent_mask: Array | None = None,
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
    variant: ``"reset_after"`` or ``"reset_before"``.
    seq_lengths: optional ``[B]`` integer lengths in ``[0, T]``.
    reverse: run from the last step to the first.
    unroll: steps per loop iteration of ``lax.scan``.
    dtype: compute dtype of the step (``None``: promote).
    recurrent_mask: optional ``[B, H]`` recurrent-dropout mask (zeros and
      ``1 / (1 - p)``), the same at every step: it multiplies ``h_{t-1}`` where
      it enters the recurrent products, never the carry itself.

  Returns:
    ``(outputs [T, B, H], h_last [B, H])``; ``outputs`` has the carry dtype and
    ``h_last`` is the state after each sequence's last valid step (after step 0
    when ``reverse``).

  >>> H, I, T, B = 2, 3, 5, 1
  >>> p = {"input_kernel": jnp.ones((I, 3 * H)), "recurrent_kernel": jnp.zeros((H, 3 * H)),
  ...      "input_bias": jnp.zeros(3 * H), "recurrent_bias": jnp.zeros(3 * H)}
  >>> x_proj = gates.input_projection(p, jnp.zeros((T, B, I)))  # [T, B, 3H]
  >>> ys, h_last = gru_scan(p, x_proj, jnp.ones((B, H)))  # z = 1/2, n = 0: h halves
  >>> ys[:, 0, 0]
  Array([0.5    , 0.25   , 0.125  , 0.0625 , 0.03125], dtype=float32)
  """
  variant = gates.as_variant(variant)
  # Three per-gate arrays: slicing one wide [T, B, 3H] array inside the loop
  # is several times slower on XLA:CPU (PERF_NOTES).
  xs = tuple(jnp.split(x_proj, 3, axis=-1))  # 3 x [T, B, H]
  num_steps = x_proj.shape[0]

  if seq_lengths is None:

    def body(h, x_t):
      h = gates.step_from_projection(params, h, x_t, variant, dtype, recurrent_mask)
      return h, h

    h_last, ys = jax.lax.scan(body, h0, xs, reverse=reverse, unroll=unroll)
    return ys, h_last

  def masked_body(h, inp):
    x_t, t = inp
    h_new = gates.step_from_projection(params, h, x_t, variant, dtype, recurrent_mask)
    valid = (t < seq_lengths)[:, None]  # [B, 1]
    return jnp.where(valid, h_new, h), jnp.where(valid, h_new, jnp.zeros_like(h_new))

  steps = jnp.arange(num_steps, dtype=seq_lengths.dtype)
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
    variant: str | gates.Variant = gates.Variant.RESET_AFTER,
    seq_lengths: Array | None = None,
    reverse: bool = False,
    unroll: int = 1,
    dtype=None,
    recurrent_mask: Array | None = None,
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
    variant, seq_lengths, reverse, unroll, dtype, recurrent_mask: as in
      :func:`gru_scan`.

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
  variant = gates.as_variant(variant)
  num_steps, batch, features = inputs.shape
  block = check_remat(remat, num_steps, remat_segment, unroll)
  run = dict(variant=variant, reverse=reverse, dtype=dtype, recurrent_mask=recurrent_mask)
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


class Implementation(str, enum.Enum):
  """How :class:`jaxgru.GRU` runs the recurrence; all give the same numbers.

  ``AUTO`` picks the fastest implementation known to work on the current
  backend (:func:`resolve_implementation`). ``SCAN`` is the reference
  ``lax.scan`` with autodiff, :func:`gru_scan`. ``CUSTOM_VJP`` is the same
  forward scan with a hand-written, cuDNN-style backward pass
  (:func:`jaxgru.custom_vjp.gru_scan_custom_vjp`); like ``SCAN`` it computes
  the input projection of all steps as one product before the loop.
  ``CUSTOM_VJP_IN_LOOP`` has the same backward but projects each step's input
  inside the loop (:func:`jaxgru.custom_vjp.gru_scan_from_inputs`), so no
  ``[T, B, 3H]`` array is ever stored. These and ``PALLAS`` support reverse-mode
  differentiation only; ``SCAN`` also supports forward mode (``jax.jvp``,
  ``jax.jacfwd``, ``jax.hessian``). ``PALLAS`` runs the forward recurrence
  as one persistent Pallas kernel launch with ``CUSTOM_VJP``'s backward
  (:func:`jaxgru.pallas_gru.gru_scan_pallas`); off a GPU, or where the
  kernel cannot take ``H``, it falls back to ``CUSTOM_VJP`` (same numbers).
  """

  AUTO = "auto"
  SCAN = "scan"
  CUSTOM_VJP = "custom_vjp"
  CUSTOM_VJP_IN_LOOP = "custom_vjp_in_loop"
  PALLAS = "pallas"


def as_implementation(implementation: str | Implementation) -> Implementation:
  """Returns ``implementation`` as an :class:`Implementation`, raising ``ValueError`` if unknown."""
  return gates.as_choice(Implementation, implementation, "GRU implementation")


def resolve_implementation(
    implementation: str | Implementation,
    *,
    backend: str | None = None,
    hidden: int | None = None,
    dtype=None,
) -> Implementation:
  """Turns ``AUTO`` into a concrete implementation for ``backend`` (default: JAX's default backend).

  On CPU ``AUTO`` is ``CUSTOM_VJP_IN_LOOP``, for every shape and both
  variants. Measured on a 2-core CPU against
  ``flax.linen.RNN(flax.linen.GRUCell)`` (ratios of median times in one
  interleaved run, the two calmest runs; (B, T, I, H)): forward+backward
  0.54-0.69 at (32, 128, 64, 128), 0.70-0.78 at (16, 1024, 32, 64),
  0.93-0.97 at (64, 512, 128, 256), 0.99 at (256, 64, 256, 512); forward
  0.51-0.96. ``CUSTOM_VJP`` (hoisted projection) was slower at every shape,
  most at the larger ones, where its ``[T, B, 3H]`` projection costs page
  faults; ``SCAN`` was 1.06-1.34x flax forward+backward. Details:
  ``experiments/results/speed_notes.md``.

  On a GPU ``AUTO`` is ``PALLAS`` when the kernel takes ``hidden`` and the
  ``[H, 3H]`` recurrent weights in the compute ``dtype`` fit on chip
  (:func:`jaxgru.pallas_gru.supported_on_gpu` and
  :func:`jaxgru.pallas_gru.fits_on_chip`: H a power of two from 16 to 128 in
  bfloat16, to 64 in float32), else ``CUSTOM_VJP``: one large input
  projection and a reverse loop with one product per step are what pay where
  each loop step costs kernel launches. Neither choice is measured on a GPU
  yet (``experiments/results/pallas_roofline.md``). Elsewhere ``AUTO`` is
  ``CUSTOM_VJP``.

  Args:
    implementation: the requested implementation.
    backend: ``"cpu"``, ``"gpu"``, ``"tpu"``; ``None`` asks JAX.
    hidden: H, when known.
    dtype: the compute dtype, when known (``None``: float32).
  """
  implementation = as_implementation(implementation)
  if implementation is not Implementation.AUTO:
    return implementation
  backend = backend or jax.default_backend()
  if backend == "cpu":
    return Implementation.CUSTOM_VJP_IN_LOOP
  if (
      backend == "gpu"
      and hidden is not None
      and pallas_gru.supported_on_gpu(hidden)
      and pallas_gru.fits_on_chip(hidden, dtype or jnp.float32)
  ):
    return Implementation.PALLAS
  return Implementation.CUSTOM_VJP


def run_direction(implementation: str | Implementation, params: gates.Params, x: Array, h0: Array, **kwargs):
  """Runs one layer direction on inputs ``x [T, B, I]`` with the chosen implementation.

  The other arguments and the results are those of :func:`gru_scan`; the
  input projection is computed here, before the loop or inside it as the
  implementation does it. A ``recurrent_mask`` keyword (recurrent dropout)
  is passed on to :func:`gru_scan` only, the one implementation that takes
  it: ``AUTO`` then resolves to ``SCAN`` and any other choice raises
  ``ValueError``.
  """
  dtype = kwargs.get("dtype")
  if kwargs.get("recurrent_mask") is not None:
    if as_implementation(implementation) not in (Implementation.AUTO, Implementation.SCAN):
      raise ValueError(f"a recurrent_mask (recurrent dropout) needs implementation 'scan', got {implementation!r}")
    implementation = Implementation.SCAN
  kwargs = {k: v for k, v in kwargs.items() if k != "recurrent_mask" or v is not None}
  implementation = resolve_implementation(
      implementation, hidden=h0.shape[-1], dtype=dtype or jnp.result_type(x, params["input_kernel"])
  )
  if implementation is Implementation.CUSTOM_VJP_IN_LOOP:
    return custom_vjp.gru_scan_from_inputs(params, x, h0, **kwargs)
  x_proj = gates.input_projection(params, x, dtype)  # [T, B, 3H]
  runners = {
      Implementation.SCAN: gru_scan,
      Implementation.CUSTOM_VJP: custom_vjp.gru_scan_custom_vjp,
      Implementation.PALLAS: pallas_gru.gru_scan_pallas,
  }
  return runners[implementation](params, x_proj, h0, **kwargs)
