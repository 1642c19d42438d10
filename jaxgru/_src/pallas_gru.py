r"""A persistent Pallas kernel for the GRU forward recurrence (one launch per sequence).

On a GPU, XLA runs a ``lax.scan`` as a while loop that launches several
kernels per time step, so a scanned GRU spends most of its time between
kernels. This kernel runs the whole time loop inside one launch instead:

* the grid splits the batch into blocks of :data:`BLOCK_B` rows, one program
  per block, and each program walks all ``T`` steps of its rows;
* each program loads the recurrent kernel ``[H, 3H]`` and bias once, before
  the loop, and keeps them as loop-invariant values (in registers when
  ``3 H^2`` weights fit about half of an SM's register file, e.g. H=128 in bfloat16);
* each step reads its slice of the hoisted input projection ``x_proj[t]``,
  does the three ``[BLOCK_B, H] x [H, H]`` gate products and the gate maths
  of :func:`jaxgru.gates.step` (the step every implementation runs), and
  writes the output and, when training, the activations the backward needs.

The backward pass is :func:`jaxgru._src.backward.backward_scan` (one ``[B, 3H] x
[3H, H]`` step product, weight gradients as large products after the loop),
wired through ``jax.custom_vjp``; so the gradients are those of the
``"custom_vjp"`` implementation.

The kernel is written against the Pallas Triton lowering (``jax.experimental.
pallas.triton``), which runs on an NVIDIA H100 as on older GPUs: its loads are
plain pointer arithmetic, so a dynamic time index into ``x_proj`` costs
nothing to express, and ``jnp.dot`` maps to tensor-core MMAs for bfloat16.
Mosaic GPU would give explicit shared memory and TMA, at the cost of
warpgroup-level code that could not be checked without a GPU here.

The kernel has not yet run on GPU hardware: it is an explicit choice
(``implementation="pallas"``), never what ``"auto"`` picks, until a committed
GPU benchmark shows it correct and faster (the roofline estimate is in
``experiments/results/pallas_roofline.md``). Off a GPU it runs only in the
Pallas interpreter (``interpret=True``, what the tests do). ``import jaxgru``
does not load Pallas: it is imported when the kernel is first built.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxgru._src import backward
from jaxgru._src import dtypes
from jaxgru._src import gates
from jaxgru._src import request
from jaxgru._src import scan
from jaxgru._src import validation

Array = jax.Array

# Batch rows per program: the smallest M of a Triton tensor-core dot.
BLOCK_B = 16


def supported_on_gpu(hidden: int) -> bool:
  """Whether the Triton lowering can take ``H``: a power of two in ``[16, 512]``.

  Triton tensors need power-of-two shapes and a dot needs every dimension of
  at least 16; above 512 the per-program weights no longer fit anywhere near
  the chip.

  >>> [supported_on_gpu(h) for h in (8, 16, 96, 128, 512, 1024)]
  [False, True, False, True, True, False]
  """
  return 16 <= hidden <= 512 and hidden & (hidden - 1) == 0


def check_hidden(hidden: int) -> None:
  """Raises ``ValueError`` unless the kernel can take ``H = hidden`` (:func:`supported_on_gpu`)."""
  if not supported_on_gpu(hidden):
    raise ValueError(
      f"implementation 'pallas' needs H a power of two in [16, 512] (Triton tensor shapes), got H={hidden}; "
      "use 'auto' or 'custom_vjp' for this H"
    )


def check_compiled_kernel(backend: str, hidden: int | None) -> None:
  """Raises ``ValueError`` unless the compiled kernel can run on ``backend`` (and with ``H = hidden``, when given).

  >>> check_compiled_kernel("cpu", 64)
  Traceback (most recent call last):
  ...
  ValueError: implementation 'pallas' runs compiled on a GPU only (backend is 'cpu'); use 'auto' or 'custom_vjp' here, or gru_scan_pallas(..., interpret=True) for the Pallas interpreter
  """
  if backend != "gpu":
    raise ValueError(
      f"implementation 'pallas' runs compiled on a GPU only (backend is {backend!r}); use 'auto' or "
      "'custom_vjp' here, or gru_scan_pallas(..., interpret=True) for the Pallas interpreter"
    )
  if hidden is not None:
    check_hidden(hidden)


def _kernel(*refs, num_steps, variant, reverse, masked, restarting, keep, dtype):
  """One program: ``BLOCK_B`` rows through all ``T`` steps.

  Refs, in order: ``x_proj [T, b, 3H]``, ``w [H, 3H]``, ``bias [1, 3H]``,
  ``h0 [b, H]``, (``lengths [b]`` when masked), (``restart [T, b]`` int32 and
  ``h_reset [b, H]`` when restarting: episode resets), then the outputs ``ys [T, b,
  H]``, ``h_last [b, H]`` and, when ``keep``, the five residual arrays of
  :class:`jaxgru._src.backward.Residuals`, each ``[T, b, H]``.
  """
  from jax.experimental import pallas as pl  # noqa: PLC0415 - loaded on first use only

  x_ref, w_ref, b_ref, h0_ref, *refs = refs
  len_ref = refs.pop(0) if masked else None
  restart_ref, h_reset_ref = (refs.pop(0), refs.pop(0)) if restarting else (None, None)
  ys_ref, h_last_ref, *res_refs = refs
  hidden = h0_ref.shape[-1]
  gate = lambda g: pl.ds(g * hidden, hidden)  # noqa: E731 - columns of gate g
  # Loaded once: loop-invariant values that stay in registers (when they fit).
  # Gate maths in float32 at least: Triton lowers no bfloat16 division.
  gate_dtype = dtypes.at_least_float32(dtype)
  # Per-gate blocks (gates.recurrent_blocks(per_gate=True)), loaded from the refs.
  w = tuple(w_ref[:, gate(g)].astype(dtype) for g in range(3))  # 3 x [H, H]
  b = tuple(b_ref[:, gate(g)].astype(gate_dtype) for g in range(3))  # 3 x [1, H]
  lengths = len_ref[...][:, None] if masked else None  # [b, 1]
  h_reset = h_reset_ref[...] if restarting else None  # [b, H]

  def body(i, h):
    t = num_steps - 1 - i if reverse else i
    x_t = tuple(x_ref[t, :, gate(g)] for g in range(3))  # 3 x [b, H]
    h_in = scan.state_entering(h, restart_ref[t] != 0 if restarting else None, h_reset)
    h_new, acts = gates.step((w, b), h_in, x_t, variant, dtype, gate_dtype=gate_dtype)
    y = h_new
    if masked:
      h_new, y = scan.keep_valid(t < lengths, h_new, h)  # lengths: [b, 1]
    ys_ref[t] = y.astype(ys_ref.dtype)
    if keep:
      for ref, value in zip(res_refs, (h_in,) + tuple(acts)):
        ref[t] = value.astype(ref.dtype)
    return h_new

  h_last_ref[...] = jax.lax.fori_loop(0, num_steps, body, h0_ref[...]).astype(h_last_ref.dtype)


def _run_kernel(w, b, x_proj, h0, seq_lengths, restart, h_reset, *, variant, reverse, dtype, keep, interpret):
  """Pads the batch to whole blocks, launches the kernel and strips the padding."""
  from jax.experimental import pallas as pl  # noqa: PLC0415 - loaded on first use only

  num_steps, batch, _ = x_proj.shape
  hidden = h0.shape[-1]
  padded = -(-batch // BLOCK_B) * BLOCK_B
  masked = seq_lengths is not None
  restarting = restart is not None
  if restarting:
    restart = restart.astype(jnp.int32)  # [T, B]: Triton loads no booleans
  if padded != batch:
    pad = padded - batch
    x_proj = jnp.pad(x_proj, ((0, 0), (0, pad), (0, 0)))
    h0 = jnp.pad(h0, ((0, pad), (0, 0)))
    if masked:
      seq_lengths = jnp.pad(seq_lengths, (0, pad))
    if restarting:
      restart, h_reset = jnp.pad(restart, ((0, 0), (0, pad))), jnp.pad(h_reset, ((0, pad), (0, 0)))

  rows = lambda i: (0, i, 0)  # noqa: E731 - block i of the batch in [T, B, ...]
  in_specs = [
    pl.BlockSpec((num_steps, BLOCK_B, 3 * hidden), rows),
    pl.BlockSpec((hidden, 3 * hidden), lambda i: (0, 0)),
    pl.BlockSpec((1, 3 * hidden), lambda i: (0, 0)),
    pl.BlockSpec((BLOCK_B, hidden), lambda i: (i, 0)),
  ]
  args = [x_proj, w, b.reshape(1, 3 * hidden), h0]
  if masked:
    in_specs.append(pl.BlockSpec((BLOCK_B,), lambda i: (i,)))
    args.append(seq_lengths)
  if restarting:
    in_specs += [
      pl.BlockSpec((num_steps, BLOCK_B), lambda i: (0, i)),
      pl.BlockSpec((BLOCK_B, hidden), lambda i: (i, 0)),
    ]
    args += [restart, h_reset]
  seq_spec = pl.BlockSpec((num_steps, BLOCK_B, hidden), rows)
  out_specs = [seq_spec, pl.BlockSpec((BLOCK_B, hidden), lambda i: (i, 0))]
  out_shape = [
    jax.ShapeDtypeStruct((num_steps, padded, hidden), h0.dtype),
    jax.ShapeDtypeStruct((padded, hidden), h0.dtype),
  ]
  if keep:  # h_prev (carry dtype), then r, z, n, aux (compute dtype), as backward.Residuals
    out_specs += [seq_spec] * 5
    out_shape += [jax.ShapeDtypeStruct((num_steps, padded, hidden), d) for d in (h0.dtype,) + (dtype,) * 4]

  kernel = functools.partial(
    _kernel,
    num_steps=num_steps,
    variant=variant,
    reverse=reverse,
    masked=masked,
    restarting=restarting,
    keep=keep,
    dtype=dtype,
  )
  compiler_params = None
  if not interpret:
    from jax.experimental.pallas import triton as plgpu  # noqa: PLC0415 - GPU-only import

    compiler_params = plgpu.CompilerParams(num_warps=4 if hidden <= 128 else 8, num_stages=1)
  outs = pl.pallas_call(
    kernel,
    out_shape=out_shape,
    grid=(padded // BLOCK_B,),
    in_specs=in_specs,
    out_specs=out_specs,
    interpret=interpret,
    compiler_params=compiler_params,
    name="gru_forward",
  )(*args)
  ys, h_last, *res = (o[:, :batch] if o.ndim == 3 else o[:batch] for o in outs)
  if not keep:
    return ys, h_last
  return ys, h_last, backward.Residuals(*res)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _pallas_scan(variant, reverse, dtype, interpret, w, b, x_proj, h0, seq_lengths, restart, h_reset):
  return _run_kernel(
    w,
    b,
    x_proj,
    h0,
    seq_lengths,
    restart,
    h_reset,
    variant=variant,
    reverse=reverse,
    dtype=dtype,
    keep=False,
    interpret=interpret,
  )


def _pallas_scan_fwd(variant, reverse, dtype, interpret, w, b, x_proj, h0, seq_lengths, restart, h_reset):
  ys, h_last, res = _run_kernel(
    w,
    b,
    x_proj,
    h0,
    seq_lengths,
    restart,
    h_reset,
    variant=variant,
    reverse=reverse,
    dtype=dtype,
    keep=True,
    interpret=interpret,
  )
  # x_proj's dtype only, no input kernel: the hoisted-projection layout.
  reset_like = None if h_reset is None else jnp.zeros((0,), h_reset.dtype)
  saved = backward.Saved(
    w, jnp.zeros((0,), b.dtype), jnp.zeros((0,), x_proj.dtype), h0, seq_lengths, restart, reset_like, None, None, res
  )
  return (ys, h_last), saved


def _pallas_scan_bwd(variant, reverse, dtype, interpret, saved, cotangents):
  del interpret  # the backward is the scanned reverse pass
  grads = backward.backward_scan(variant, reverse, 1, dtype, saved, cotangents)
  return grads[:7]  # w, b, x_proj, h0, seq_lengths, restart, h_reset


_pallas_scan.defvjp(_pallas_scan_fwd, _pallas_scan_bwd)


def run_pallas(d: request.Direction, *, interpret: bool) -> tuple[Array, Array]:
  """The ``"pallas"`` runner on a request with projected inputs (:func:`jaxgru._src.request.prepare_direction`)."""
  if not interpret:
    check_compiled_kernel(jax.default_backend(), d.h0.shape[-1])
  w, b = d.params["recurrent_kernel"], d.params["recurrent_bias"]
  return _pallas_scan(
    d.variant, d.reverse, jnp.dtype(d.dtype), bool(interpret), w, b, d.x, d.h0, d.seq_lengths, d.restart, d.h_reset
  )


def gru_scan_pallas(
  params: gates.Params,
  x_proj: Array,
  h0: Array,
  *,
  variant: str | gates.Variant = gates.Variant.RESET_AFTER,
  seq_lengths: Array | None = None,
  reverse: bool = False,
  dtype=None,
  resets: Array | None = None,
  reset_carry: Array | None = None,
  interpret: bool = False,
) -> tuple[Array, Array]:
  """:func:`jaxgru.gru_scan` as one persistent Pallas kernel launch, with the custom backward.

  >>> H = 4
  >>> p = {"recurrent_kernel": jnp.full((H, 3 * H), 0.1), "recurrent_bias": jnp.zeros(3 * H)}
  >>> x_proj, h0 = jnp.ones((5, 2, 3 * H)), jnp.zeros((2, H))  # [T, B, 3H], [B, H]
  >>> ys, h_last = gru_scan_pallas(p, x_proj, h0, interpret=True)
  >>> bool(jnp.allclose(ys, backward.gru_scan_custom_vjp(p, x_proj, h0)[0], atol=1e-6))
  True

  Args:
    params: GRU parameters (``recurrent_kernel [H, 3H]``, ``recurrent_bias [3H]``).
    x_proj: ``[T, B, 3H]`` input projections.
    h0: ``[B, H]`` initial state; its dtype is the carry dtype.
    variant, seq_lengths, reverse, dtype, resets, reset_carry: as :func:`jaxgru.gru_scan`.
    interpret: ``True`` runs the kernel in the Pallas interpreter (any
      backend; slow, for tests); ``False`` runs it compiled, which needs a GPU
      and an ``H`` that :func:`supported_on_gpu` allows.

  Returns:
    ``(outputs [T, B, H], h_last [B, H])`` as :func:`jaxgru.gru_scan`.

  Raises:
    ValueError: the compiled kernel was asked for off a GPU or for an ``H``
      it cannot take (nothing falls back silently), or mis-shaped arguments.
  """
  validation.check_bool("interpret", interpret)
  d = request.prepare_direction(
    params,
    x_proj,
    h0,
    projected=True,
    variant=variant,
    seq_lengths=seq_lengths,
    reverse=reverse,
    unroll=1,
    dtype=dtype,
    resets=resets,
    reset_carry=reset_carry,
  )
  return run_pallas(d, interpret=interpret)
