r"""The GRU recurrence with a hand-written backward pass (``jax.custom_vjp``).

Same signature and numbers as :func:`jaxgru.scan.gru_scan`; only the way
gradients are computed differs. Autodiff through ``lax.scan`` keeps the
weight-gradient product and its ``[H, 3H]`` accumulator inside the reverse
loop. Here, as cuDNN does, the forward scan stores the few activations the
backward needs, the reverse scan carries only :math:`\partial L/\partial h`
and does one ``[B, 3H] x [3H, H]`` product per step, and the weight and bias
gradients are single large products over all stored steps after the loop.

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

from jaxgru import gates

Array = jax.Array


class _Residuals(NamedTuple):
  """Activations the forward scan stores for the backward scan."""

  h_prev: Array  # [T, B, H], carry dtype: the state each step starts from.
  r: Array  # [T, B, H] reset gate, compute dtype.
  z: Array  # [T, B, H] update gate.
  n: Array  # [T, B, H] candidate state.
  # reset_after: a_n = h W_hn + b_hn; reset_before: r * h, the input of W_hn.
  aux: Array  # [T, B, H]


def _step(w, b, h, x_t, variant, dtype):
  """One forward step; returns the new state (carry dtype) and its activations.

  One ``[H, H]`` product per gate: on XLA:CPU this measured faster than one
  fused ``[H, 3H]`` product whose result is then sliced (speed_notes.md).
  """
  x_r, x_z, x_n = (x.astype(dtype) for x in x_t)
  hc = h.astype(dtype)
  a_r, a_z = (jnp.matmul(hc, w_g) + b_g for w_g, b_g in zip(w[:2], b[:2]))
  r = gates.reset_gate(x_r, a_r)
  z = gates.update_gate(x_z, a_z)
  if variant is gates.Variant.RESET_AFTER:
    aux = jnp.matmul(hc, w[2]) + b[2]  # a_n
    n = gates.candidate_state(x_n, aux, r)
  else:
    aux = r * hc
    n = gates.candidate_state(x_n, jnp.matmul(aux, w[2]) + b[2], 1)
  h_new = gates.new_hidden_state(n, z, hc).astype(h.dtype)
  return h_new, (r, z, n, aux)


def _forward(w, b, x_proj, h0, seq_lengths, *, variant, reverse, unroll, dtype, keep):
  """The forward scan; with ``keep`` it also returns :class:`_Residuals`."""
  # Per-gate arrays, split once outside the loop: slicing one wide array inside
  # the loop is several times slower on XLA:CPU (PERF_NOTES), and XLA does not
  # hoist loop-invariant slices of the weights by itself.
  xs = tuple(jnp.split(x_proj, 3, axis=-1))  # 3 x [T, B, H]
  w = tuple(jnp.split(w.astype(dtype), 3, axis=-1))  # 3 x [H, H]
  b = tuple(jnp.split(b.astype(dtype)[None, :], 3, axis=-1))  # 3 x [1, H]

  def body(h, inp):
    x_t, t = inp
    h_new, acts = _step(w, b, h, x_t, variant, dtype)
    y = h_new
    if seq_lengths is not None:
      valid = (t < seq_lengths)[:, None]  # [B, 1]
      y = jnp.where(valid, h_new, jnp.zeros_like(h_new))
      h_new = jnp.where(valid, h_new, h)
    return h_new, ((y, h) + acts if keep else y)

  steps = jnp.arange(x_proj.shape[0], dtype=_step_dtype(seq_lengths))
  h_last, out = jax.lax.scan(body, h0, (xs, steps), reverse=reverse, unroll=unroll)
  if not keep:
    return out, h_last
  ys, *acts = out
  return ys, h_last, _Residuals(*acts)


def _step_dtype(seq_lengths):
  return jnp.int32 if seq_lengths is None else seq_lengths.dtype


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _scan(variant, reverse, unroll, dtype, w, b, x_proj, h0, seq_lengths):
  return _forward(
      w, b, x_proj, h0, seq_lengths, variant=variant, reverse=reverse, unroll=unroll, dtype=dtype, keep=False
  )


def _scan_fwd(variant, reverse, unroll, dtype, w, b, x_proj, h0, seq_lengths):
  ys, h_last, res = _forward(
      w, b, x_proj, h0, seq_lengths, variant=variant, reverse=reverse, unroll=unroll, dtype=dtype, keep=True
  )
  # Zero-size stand-ins carry the input dtypes without keeping x_proj alive.
  dtypes = (jnp.zeros((0,), b.dtype), jnp.zeros((0,), x_proj.dtype))
  return (ys, h_last), (w, dtypes, h0, seq_lengths, res)


def _scan_bwd(variant, reverse, unroll, dtype, saved, cotangents):
  w, (b_like, x_like), h0, seq_lengths, res = saved
  d_ys, d_h_last = cotangents  # [T, B, H], [B, H]
  # Gradients accumulate in float32 at least, whatever the compute dtype.
  with jax.numpy_dtype_promotion("standard"):
    acc = jnp.promote_types(jnp.promote_types(dtype, h0.dtype), jnp.float32)
  reset_after = variant is gates.Variant.RESET_AFTER
  # Transposed per-gate blocks [H, H]: three products per step cost less than
  # concatenating the gate gradients for one [B, 3H] x [3H, H] product here.
  w_t = tuple(wg.T for wg in jnp.split(w.astype(dtype).astype(acc), 3, axis=-1))

  def body(g, inp):
    (h, r, z, n, aux, d_y), t = inp
    h, r, z, n, aux = (v.astype(acc) for v in (h, r, z, n, aux))
    d_new = g + d_y.astype(acc)  # dL/dh' of this step
    if seq_lengths is not None:
      valid = (t < seq_lengths)[:, None]  # [B, 1]
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
    return d_h, (d_r, d_z, d_n)

  steps = jnp.arange(d_ys.shape[0], dtype=_step_dtype(seq_lengths))
  inputs = ((res.h_prev, res.r, res.z, res.n, res.aux, d_ys), steps)
  d_h0, (d_r, d_z, d_n) = jax.lax.scan(
      body, d_h_last.astype(acc), inputs, reverse=not reverse, unroll=unroll
  )  # [B, H], 3 x [T, B, H]

  # Weight and bias gradients: one large product per gate over all T*B rows.
  def outer(u, v):  # sum_{t,b} u[t,b]^T v[t,b]: [T, B, H], [T, B, H] -> [H, H]
    u2d, v2d = u.reshape(-1, u.shape[-1]).astype(acc), v.reshape(-1, v.shape[-1])
    return jax.lax.dot_general(u2d, v2d, (((0,), (0,)), ((), ())))

  if reset_after:  # a_n = h W_hn + b_hn enters n as r * a_n
    d_a_n, n_input = d_n * res.r.astype(acc), res.h_prev
  else:  # W_hn multiplies r * h
    d_a_n, n_input = d_n, res.aux
  d_w = jnp.concatenate([outer(res.h_prev, d_r), outer(res.h_prev, d_z), outer(n_input, d_a_n)], -1)
  d_b = jnp.concatenate([d.sum((0, 1)) for d in (d_r, d_z, d_a_n)])
  d_x = jnp.concatenate([d_r, d_z, d_n], -1)  # [T, B, 3H]
  return (
      d_w.astype(w.dtype),
      d_b.astype(b_like.dtype),
      d_x.astype(x_like.dtype),
      d_h0.astype(h0.dtype),
      None,
  )


_scan.defvjp(_scan_fwd, _scan_bwd)


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
) -> tuple[Array, Array]:
  """:func:`jaxgru.scan.gru_scan` with a hand-written, cuDNN-style backward pass.

  Arguments, results and numbers are those of :func:`jaxgru.scan.gru_scan`
  (outputs and gradients agree to float32 rounding). Gradients flow to
  ``x_proj``, ``h0``, ``params["recurrent_kernel"]`` and
  ``params["recurrent_bias"]``; the input kernel and bias get theirs through
  the input projection by ordinary autodiff.

  Args:
    params: GRU parameters (``recurrent_kernel [H, 3H]``, ``recurrent_bias [3H]``).
    x_proj: ``[T, B, 3H]`` input projections.
    h0: ``[B, H]`` initial state; its dtype is the carry dtype.
    variant: ``"reset_after"`` or ``"reset_before"``.
    seq_lengths: optional ``[B]`` integer lengths in ``[0, T]``.
    reverse: run from the last step to the first.
    unroll: steps per loop iteration, forward and backward.
    dtype: compute dtype of the step (``None``: promote).

  Returns:
    ``(outputs [T, B, H], h_last [B, H])`` as :func:`jaxgru.scan.gru_scan`.

  >>> H = 4
  >>> p = {"recurrent_kernel": jnp.full((H, 3 * H), 0.1), "recurrent_bias": jnp.zeros(3 * H)}
  >>> x_proj, h0 = jnp.ones((5, 2, 3 * H)), jnp.zeros((2, H))  # [T, B, 3H], [B, H]
  >>> loss = lambda p, x: gru_scan_custom_vjp(p, x, h0)[0].sum()
  >>> grads = jax.grad(loss)(p, x_proj)
  >>> grads["recurrent_kernel"].shape
  (4, 12)
  """
  variant = gates.as_variant(variant)
  w, b = params["recurrent_kernel"], params["recurrent_bias"]
  dtype = jnp.dtype(dtype or jnp.result_type(x_proj, h0, w))
  if seq_lengths is not None:
    seq_lengths = jnp.asarray(seq_lengths)
  return _scan(variant, bool(reverse), int(unroll), dtype, w, b, x_proj, h0, seq_lengths)
