r"""The GRU recurrence with a hand-written backward pass (``jax.custom_vjp``).

Same numbers as :func:`jaxgru.gru_scan`; only the way gradients are
computed differs. Autodiff through ``lax.scan`` keeps the weight-gradient
product and its ``[H, 3H]`` accumulator inside the reverse loop. Here, as
cuDNN does, the forward scan stores the few activations the backward needs,
the reverse scan carries only :math:`\partial L/\partial h` and does one
``[B, 3H] x [3H, H]`` product per step (as three per-gate ``[H, H]`` blocks),
and the weight and bias gradients are large products over all stored steps
after the loop.

Two entry points: :func:`gru_scan_custom_vjp` takes the hoisted input
projection ``x_proj [T, B, 3H]`` like :func:`jaxgru.gru_scan`;
:func:`gru_scan_custom_vjp_in_loop` takes the raw inputs ``x [T, B, I]`` and projects
them step by step inside the loop (faster on CPU, see ``experiments/results/speed_notes.md``).
The forward is :func:`jaxgru._src.scan.loop`, the loop the scan runs.
Both support reverse-mode differentiation only (``jax.grad``, ``jax.vjp``);
forward mode (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``) needs
:func:`jaxgru.gru_scan`.

Backward of one ``reset_after`` step (``a = h W_h + b_h``, pre-activations
:math:`\hat r, \hat z, \hat n`, :math:`g = \partial L / \partial h'`):

.. math::

   \partial \hat n &= g \odot (1 - z) \odot (1 - n^2) \\
   \partial \hat z &= g \odot (h - n) \odot z (1 - z) \\
   \partial \hat r &= \partial \hat n \odot a_n \odot r (1 - r) \\
   \partial a &= [\partial \hat r \,|\, \partial \hat z \,|\, \partial \hat n \odot r] \\
   \partial h &= g \odot z + \partial a \, W_h^\top \\
   \partial W_h &= \textstyle\sum_t h_{t-1}^\top \partial a_t, \quad
   \partial b_h = \textstyle\sum_{t,b} \partial a_t, \quad
   \partial x_t = [\partial \hat r \,|\, \partial \hat z \,|\, \partial \hat n]

For ``reset_before`` (:math:`\hat n = x_n + (r \odot h) W_{hn} + b_{hn}`) the
reverse step needs a second product, :math:`\partial (r \odot h) = \partial
\hat n W_{hn}^\top`, before the reset gate's gradient is known.

Shapes follow the legend in :mod:`jaxgru.gates`.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgru._src import dtypes
from jaxgru._src import gates
from jaxgru._src import request
from jaxgru._src import scan

Array = jax.Array


class Residuals(NamedTuple):
  """Activations the forward loop stores for :func:`backward_scan` (those of :class:`jaxgru.gates.Activations` per step)."""

  h_prev: Array  # [T, B, H], carry dtype: the state each step starts from.
  r: Array  # [T, B, H] reset gate, compute dtype.
  z: Array  # [T, B, H] update gate.
  n: Array  # [T, B, H] candidate state.
  # reset_after: a_n = h W_hn + b_hn; reset_before: r * h, the input of W_hn.
  aux: Array  # [T, B, H]


class Saved(NamedTuple):
  """What :func:`backward_scan` needs from the forward pass."""

  w: Array  # [H, 3H] recurrent kernel.
  b_like: Array  # [0], the recurrent bias's dtype.
  x: Array  # [T, B, I] raw inputs, or [0] (the dtype of x_proj) when the projection was hoisted.
  h0: Array  # [B, H] initial state.
  seq_lengths: Array | None  # [B] int32 or None.
  restart: Array | None  # [T, B] bool: steps that start from h_reset (episode resets), or None.
  h_reset: Array | None  # [B, H] the state a reset restores, or None.
  w_i: Array | None  # [I, 3H] input kernel when projected in the loop, else None.
  b_i: Array | None  # [3H] input bias when projected in the loop, else None.
  res: Residuals  # [T, B, H] each.


def _forward(w, b, x, h0, seq_lengths, restart, h_reset, w_i, b_i, *, variant, reverse, unroll, dtype, keep):
  """:func:`jaxgru._src.scan.loop` on the recurrent weights; ``x`` is ``[T, B, 3H]``, or ``[T, B, I]`` with ``w_i``."""
  # Products stay wide ([I, 3H] and [H, 3H]): slicing a value made inside the
  # loop fuses into the gate maths, and fewer slice kernels compile faster
  # (experiments/results/speed_notes.md).
  blocks = gates.recurrent_blocks({"recurrent_kernel": w, "recurrent_bias": b}, variant, dtype)
  in_loop = None if w_i is None else (w_i.astype(dtype), b_i.astype(dtype)[None, :])
  xs = gates.split_gates(x) if w_i is None else x  # 3 x [T, B, H], or [T, B, I]
  out = scan.loop(
    blocks,
    xs,
    h0,
    variant=variant,
    dtype=dtype,
    seq_lengths=seq_lengths,
    reverse=reverse,
    unroll=unroll,
    keep=keep,
    input_weights=in_loop,
    restart=restart,
    h_reset=h_reset,
  )
  return out if not keep else (out[0], out[1], Residuals(*out[2]))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _scan(variant, reverse, unroll, dtype, w, b, x, h0, seq_lengths, restart, h_reset, w_i, b_i):
  kwargs = dict(variant=variant, reverse=reverse, unroll=unroll, dtype=dtype, keep=False)
  return _forward(w, b, x, h0, seq_lengths, restart, h_reset, w_i, b_i, **kwargs)


def _scan_fwd(variant, reverse, unroll, dtype, w, b, x, h0, seq_lengths, restart, h_reset, w_i, b_i):
  kwargs = dict(variant=variant, reverse=reverse, unroll=unroll, dtype=dtype, keep=True)
  ys, h_last, res = _forward(w, b, x, h0, seq_lengths, restart, h_reset, w_i, b_i, **kwargs)
  if w_i is None:  # only the dtypes of x and b are needed; don't keep x alive
    x, b_i = jnp.zeros((0,), x.dtype), None
  if h_reset is not None:  # only its dtype is needed
    h_reset = jnp.zeros((0,), h_reset.dtype)
  return (ys, h_last), Saved(w, jnp.zeros((0,), b.dtype), x, h0, seq_lengths, restart, h_reset, w_i, b_i, res)


def backward_scan(variant, reverse, unroll, dtype, saved: Saved, cotangents):
  """The hand-written backward pass: the reverse scan, then weight gradients as large products.

  Args:
    variant, reverse, unroll, dtype: as the forward pass.
    saved: :class:`Saved` by the forward pass.
    cotangents: ``(d_ys [T, B, H], d_h_last [B, H])``.

  Returns:
    Gradients of ``(w, b, x, h0, seq_lengths, restart, h_reset, w_i, b_i)``
    (``None`` for the integer lengths, the boolean restarts and for input
    weights or a reset state that were not given).
  """
  w, b_like, x, h0, seq_lengths, restart, h_reset, w_i, b_i, res = saved
  d_ys, d_h_last = cotangents  # [T, B, H], [B, H]
  # Gradients accumulate in float32 at least, whatever the compute dtype.
  acc = dtypes.accumulation_dtype(dtype, h0.dtype)
  reset_after = variant is gates.Variant.RESET_AFTER
  # Transposed per-gate blocks [H, H]: three products per step cost less than
  # concatenating the gate gradients for one [B, 3H] x [3H, H] product here.
  w_t = tuple(wg.T for wg in gates.split_gates(w.astype(dtype).astype(acc)))

  def body(carry, inp):
    g, d_reset = carry  # dL/dh of the carry; dL/dh_reset summed over the later steps (or None)
    (h, r, z, n, aux, d_y), valid_t, restart_t = inp
    h, r, z, n, aux = (v.astype(acc) for v in (h, r, z, n, aux))
    d_new = g + d_y.astype(acc)  # dL/dh' of this step
    if seq_lengths is not None:
      valid = valid_t[:, None]  # [B, 1]
      d_new = jnp.where(valid, d_new, jnp.zeros_like(d_new))
    d_n = d_new * (1 - z) * (1 - n * n)  # through tanh
    d_z = d_new * (h - n) * z * (1 - z)  # through sigmoid
    d_h = d_new * z + jnp.matmul(d_z, w_t[1])
    if reset_after:
      d_r = d_n * aux * r * (1 - r)
      d_h = d_h + jnp.matmul(d_n * r, w_t[2])
    else:
      d_rh = jnp.matmul(d_n, w_t[2])  # dL/d(r * h)
      d_r = d_rh * h * r * (1 - r)
      d_h = d_h + d_rh * r
    d_h = d_h + jnp.matmul(d_r, w_t[0])
    if seq_lengths is not None:
      d_h = jnp.where(valid, d_h, g)  # a padded step passes its carry through
    if restart is not None:  # a step that started from h_reset sends its gradient there, not to the carry
      starts = restart_t[:, None]
      d_reset = d_reset + jnp.where(starts, d_h, jnp.zeros_like(d_h))
      d_h = jnp.where(starts, jnp.zeros_like(d_h), d_h)
    return (d_h, d_reset), (d_r, d_z, d_n)

  valid = None if seq_lengths is None else request.valid_steps(seq_lengths, d_ys.shape[0])  # [T, B]
  inputs = ((res.h_prev, res.r, res.z, res.n, res.aux, d_ys), valid, restart)
  d_reset0 = None if restart is None else jnp.zeros(d_h_last.shape, acc)
  (d_h0, d_reset), d_pre = jax.lax.scan(
    body, (d_h_last.astype(acc), d_reset0), inputs, reverse=not reverse, unroll=unroll
  )  # [B, H], 3 x [T, B, H]: gradients of the gate pre-activations
  d_restart = (None, None) if restart is None else (None, d_reset.astype(h_reset.dtype))
  d_r, d_z, d_n = d_pre

  if reset_after:  # a_n = h W_hn + b_hn enters n as r * a_n
    d_a_n, n_input = d_n * res.r.astype(acc), res.h_prev
  else:  # W_hn multiplies r * h
    d_a_n, n_input = d_n, res.aux
  # Weight and bias gradients: one large product per gate over all T*B rows.
  d_w = jnp.concatenate([_outer(res.h_prev, d_r, acc), _outer(res.h_prev, d_z, acc), _outer(n_input, d_a_n, acc)], -1)
  d_b = jnp.concatenate([d.sum((0, 1)) for d in (d_r, d_z, d_a_n)])
  grads = (d_w.astype(w.dtype), d_b.astype(b_like.dtype))
  if w_i is None:  # x is the input projection: its gradient is d_pre
    d_x = jnp.concatenate(d_pre, -1)  # [T, B, 3H]
    return grads + (d_x.astype(x.dtype), d_h0.astype(h0.dtype), None) + d_restart + (None, None)
  # x is the raw input: the projection's gradients, again as large products;
  # three per-gate products avoid materializing a [T, B, 3H] array.
  d_w_i = jnp.concatenate([_outer(x, d, acc) for d in d_pre], -1)
  d_b_i = jnp.concatenate([d.sum((0, 1)) for d in d_pre])
  w_i_t = [wg.astype(dtype).astype(acc).T for wg in gates.split_gates(w_i)]  # 3 x [H, I]
  d_x = sum(jnp.matmul(d.reshape(-1, d.shape[-1]), wg) for d, wg in zip(d_pre, w_i_t)).reshape(x.shape)
  d_inputs = (d_w_i.astype(w_i.dtype), d_b_i.astype(b_i.dtype))
  return grads + (d_x.astype(x.dtype), d_h0.astype(h0.dtype), None) + d_restart + d_inputs


def _outer(u, v, acc):
  """``sum_{t,b} u[t,b]^T v[t,b]``: ``[T, B, K]``, ``[T, B, N]`` -> ``[K, N]`` as one 2-D product."""
  u2d, v2d = u.reshape(-1, u.shape[-1]).astype(acc), v.reshape(-1, v.shape[-1]).astype(acc)
  return jax.lax.dot_general(u2d, v2d, (((0,), (0,)), ((), ())))


_scan.defvjp(_scan_fwd, backward_scan)


def run_custom_vjp(d: request.Direction) -> tuple[Array, Array]:
  """The hand-written-backward runner on a request (:func:`jaxgru._src.request.prepare_direction`).

  ``d.projected``: ``d.x`` is the hoisted projection ``[T, B, 3H]`` (``"custom_vjp"``);
  otherwise the raw inputs ``[T, B, I]``, projected step by step inside the
  loop (``"custom_vjp_in_loop"``), so no ``[T, B, 3H]`` array is ever stored.
  """
  w, b = d.params["recurrent_kernel"], d.params["recurrent_bias"]
  w_i, b_i = (None, None) if d.projected else (d.params["input_kernel"], d.params["input_bias"])
  return _scan(
    d.variant, d.reverse, d.unroll, jnp.dtype(d.dtype), w, b, d.x, d.h0, d.seq_lengths, d.restart, d.h_reset, w_i, b_i
  )


def gru_scan_custom_vjp(
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
) -> tuple[Array, Array]:
  """:func:`jaxgru.gru_scan` with a hand-written, cuDNN-style backward pass.

  >>> H = 4
  >>> p = {"recurrent_kernel": jnp.full((H, 3 * H), 0.1), "recurrent_bias": jnp.zeros(3 * H)}
  >>> x_proj, h0 = jnp.ones((5, 2, 3 * H)), jnp.zeros((2, H))  # [T, B, 3H], [B, H]
  >>> loss = lambda p, x: gru_scan_custom_vjp(p, x, h0)[0].sum()
  >>> grads = jax.grad(loss)(p, x_proj)
  >>> grads["recurrent_kernel"].shape
  (4, 12)

  Arguments, results and numbers are those of :func:`jaxgru.gru_scan`
  (outputs and gradients agree to float32 rounding). Gradients flow to
  ``x_proj``, ``h0``, ``params["recurrent_kernel"]`` and
  ``params["recurrent_bias"]``; the input kernel and bias get theirs through
  the input projection by ordinary autodiff. ``unroll`` applies to the
  forward and the backward loop.

  Args:
    params: GRU parameters (``recurrent_kernel [H, 3H]``, ``recurrent_bias [3H]``).
    x_proj: ``[T, B, 3H]`` input projections.
    h0: ``[B, H]`` initial state; its dtype is the carry dtype.
    variant, seq_lengths, reverse, unroll, dtype, resets, reset_carry: as :func:`jaxgru.gru_scan`.

  Returns:
    ``(outputs [T, B, H], h_last [B, H])`` as :func:`jaxgru.gru_scan`.
  """
  return run_custom_vjp(
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
    )
  )


def gru_scan_custom_vjp_in_loop(
  params: gates.Params,
  x: Array,
  h0: Array,
  *,
  variant: str | gates.Variant = gates.Variant.RESET_AFTER,
  seq_lengths: Array | None = None,
  reverse: bool = False,
  unroll: int = 1,
  dtype=None,
  resets: Array | None = None,
  reset_carry: Array | None = None,
) -> tuple[Array, Array]:
  """The ``"custom_vjp_in_loop"`` implementation: :func:`gru_scan_custom_vjp` on raw inputs, projected in the loop.

  >>> H, I = 4, 2
  >>> p = {"input_kernel": jnp.full((I, 3 * H), 0.2), "recurrent_kernel": jnp.full((H, 3 * H), 0.1),
  ...      "input_bias": jnp.zeros(3 * H), "recurrent_bias": jnp.zeros(3 * H)}
  >>> x, h0 = jnp.ones((5, 2, I)), jnp.zeros((2, H))  # [T, B, I], [B, H]
  >>> ys, h_last = gru_scan_custom_vjp_in_loop(p, x, h0)
  >>> bool(jnp.allclose(ys, gru_scan_custom_vjp(p, gates.input_projection(p, x), h0)[0]))
  True

  Equal to ``gru_scan_custom_vjp(params, gates.input_projection(params, x,
  dtype), h0, dtype=dtype)`` for the compute dtype ``dtype`` (``None``
  promotes ``x``, ``h0`` and both kernels), but the ``[T, B, 3H]``
  projection is never stored: each step multiplies its ``[B, I]`` input by
  ``input_kernel`` inside the loop, and the backward computes the input
  kernel's gradient as products over all steps after its loop. On XLA:CPU
  this is faster once arrays pass tens of megabytes, where every fresh buffer
  costs page faults (experiments/results/speed_notes.md).

  Args:
    params: GRU parameters, all four arrays.
    x: ``[T, B, I]`` inputs.
    h0: ``[B, H]`` initial state; its dtype is the carry dtype.
    variant, seq_lengths, reverse, unroll, dtype, resets, reset_carry: as :func:`jaxgru.gru_scan`.

  Returns:
    ``(outputs [T, B, H], h_last [B, H])`` as :func:`jaxgru.gru_scan`.
  """
  return run_custom_vjp(
    request.prepare_direction(
      params,
      x,
      h0,
      projected=False,
      variant=variant,
      seq_lengths=seq_lengths,
      reverse=reverse,
      unroll=unroll,
      dtype=dtype,
      resets=resets,
      reset_carry=reset_carry,
    )
  )
