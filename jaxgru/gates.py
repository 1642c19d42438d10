r"""Pure GRU gate maths: one function per equation, no flax.

Shape legend used throughout jaxgru:

  B  batch            T  time steps        I  input features
  H  hidden features  L  stacked layers    D  directions (1 or 2)
  ...  any number of leading batch axes

Parameters of one GRU (one layer, one direction) are a mapping with four
arrays, gates stacked in PyTorch/cuDNN order ``r, z, n`` along the last axis::

  input_kernel      [I, 3H]   W_i = [W_ir | W_iz | W_in]
  recurrent_kernel  [H, 3H]   W_h = [W_hr | W_hz | W_hn]
  input_bias        [3H]      b_i = [b_ir | b_iz | b_in]
  recurrent_bias    [3H]      b_h = [b_hr | b_hz | b_hn]

Two formulations (``variant``):

.. math::

   r &= \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}) \\
   z &= \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}) \\
   n &= \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn}))
        \quad\text{(reset\_after: PyTorch, cuDNN, Flax, Keras default)} \\
   n &= \tanh(W_{in} x + b_{in} + W_{hn} (r \odot h) + b_{hn})
        \quad\text{(reset\_before: Cho et al. 2014)} \\
   h' &= (1 - z) \odot n + z \odot h
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import jax
import jax.numpy as jnp

Array = jax.Array
Params = Mapping[str, Array]

PARAM_NAMES = ("input_kernel", "recurrent_kernel", "input_bias", "recurrent_bias")


class Variant(str, enum.Enum):
  """Where the reset gate is applied in the candidate state."""

  RESET_AFTER = "reset_after"  # r * (W_hn h + b_hn): PyTorch, cuDNN, Flax.
  RESET_BEFORE = "reset_before"  # W_hn (r * h) + b_hn: Cho et al. 2014.


def as_choice(enum_type: type[enum.Enum], value, what: str):
  """Returns ``value`` as a member of ``enum_type``, or raises ``ValueError`` naming ``what`` and the choices.

  >>> as_choice(Variant, "reset_before", "GRU variant")
  <Variant.RESET_BEFORE: 'reset_before'>
  """
  try:
    return enum_type(value)
  except ValueError:
    expected = ", ".join(repr(v.value) for v in enum_type)
    raise ValueError(f"unknown {what} {value!r}; expected one of {expected}") from None


def as_variant(variant: str | Variant) -> Variant:
  """Returns ``variant`` as a :class:`Variant`, raising ``ValueError`` if unknown."""
  return as_choice(Variant, variant, "GRU variant")


def reset_gate(x_r: Array, h_r: Array) -> Array:
  r"""Reset gate :math:`r = \sigma(x_r + h_r)`.

  Args:
    x_r: ``[..., H]`` input part, :math:`W_{ir} x + b_{ir}`.
    h_r: ``[..., H]`` recurrent part, :math:`W_{hr} h + b_{hr}`.

  Returns:
    ``[..., H]`` gate values in (0, 1).

  >>> reset_gate(jnp.zeros(2), jnp.zeros(2))
  Array([0.5, 0.5], dtype=float32)
  """
  return jax.nn.sigmoid(x_r + h_r)  # Cho et al. 2014, eq. 5


def update_gate(x_z: Array, h_z: Array) -> Array:
  r"""Update gate :math:`z = \sigma(x_z + h_z)`.

  Args:
    x_z: ``[..., H]`` input part, :math:`W_{iz} x + b_{iz}`.
    h_z: ``[..., H]`` recurrent part, :math:`W_{hz} h + b_{hz}`.

  Returns:
    ``[..., H]`` gate values in (0, 1).

  >>> update_gate(jnp.zeros(2), jnp.zeros(2))
  Array([0.5, 0.5], dtype=float32)
  """
  return jax.nn.sigmoid(x_z + h_z)  # Cho et al. 2014, eq. 6


def candidate_state(x_n: Array, h_n: Array, r: Array) -> Array:
  r"""Candidate state :math:`n = \tanh(x_n + r \odot h_n)`.

  For ``reset_after`` pass :math:`h_n = W_{hn} h + b_{hn}`; for ``reset_before``
  pass :math:`h_n = W_{hn} (r \odot h) + b_{hn}` and ``r = 1``.

  Args:
    x_n: ``[..., H]`` input part, :math:`W_{in} x + b_{in}`.
    h_n: ``[..., H]`` recurrent part.
    r: ``[..., H]`` reset gate (or a scalar 1).

  Returns:
    ``[..., H]`` candidate values in (-1, 1).

  >>> candidate_state(jnp.zeros(2), jnp.ones(2), jnp.zeros(2))
  Array([0., 0.], dtype=float32)
  """
  return jnp.tanh(x_n + r * h_n)  # Cho et al. 2014, eq. 8


def new_hidden_state(n: Array, z: Array, h: Array) -> Array:
  r"""New hidden state :math:`h' = (1 - z) \odot n + z \odot h`.

  Args:
    n: ``[..., H]`` candidate state.
    z: ``[..., H]`` update gate.
    h: ``[..., H]`` previous hidden state.

  Returns:
    ``[..., H]`` the next hidden state, in the dtype of ``n``.

  >>> new_hidden_state(jnp.ones(2), jnp.full(2, 0.25), jnp.zeros(2))
  Array([0.75, 0.75], dtype=float32)
  """
  return n + z * (h - n)  # (1 - z) n + z h with one multiply; Cho et al. eq. 7


def add_bias(y: Array, b: Array) -> Array:
  """``y [..., F] + b [F]`` with explicit broadcasting (safe under strict rank promotion)."""
  return y + jnp.broadcast_to(b, y.shape)


def input_projection(params: Params, x: Array, dtype=None) -> Array:
  r"""Input half of all three gates, :math:`W_i x + b_i`.

  This does not depend on the hidden state, so a layer computes it for every
  time step at once, outside the recurrence.

  Args:
    params: GRU parameters (see the module docstring).
    x: ``[..., I]`` inputs.
    dtype: compute dtype; ``None`` promotes ``x`` and the parameters.

  Returns:
    ``[..., 3H]`` the projections ``[x_r | x_z | x_n]``.
  """
  w, b = params["input_kernel"], params["input_bias"]
  dtype = dtype or jnp.result_type(x, w)
  # One 2-D product: with x of rank 3, the backward's weight gradient (a
  # contraction over T and B) ran 2.5x slower on XLA:CPU (speed_notes.md).
  x2d = x.reshape(-1, x.shape[-1]).astype(dtype)  # [T*B, I]
  y = jnp.matmul(x2d, w.astype(dtype))  # [T*B, 3H]
  y = add_bias(y, b.astype(dtype))
  return y.reshape(*x.shape[:-1], w.shape[-1])


def step_from_projection(
    params: Params,
    h: Array,
    x_proj: Array | tuple[Array, Array, Array],
    variant: str | Variant = Variant.RESET_AFTER,
    dtype=None,
    recurrent_mask: Array | None = None,
) -> Array:
  """One GRU step given the input projection :func:`input_projection`.

  Args:
    params: GRU parameters.
    h: ``[..., H]`` previous hidden state (its dtype is the carry dtype).
    x_proj: ``[..., 3H]`` input projection, or the tuple ``(x_r, x_z, x_n)`` of
      ``[..., H]`` arrays (cheaper to scan over on XLA:CPU than one wide array).
    variant: ``"reset_after"`` or ``"reset_before"``.
    dtype: compute dtype of the products and gates; ``None`` promotes the
      inputs. The result is cast back to the dtype of ``h``.
    recurrent_mask: optional ``[..., H]`` recurrent-dropout mask; it multiplies
      ``h`` where it enters the recurrent products only (Gal & Ghahramani 2016),
      never the interpolation with ``z``, so the memory path is never dropped.

  Returns:
    ``[..., H]`` the new hidden state, dtype of ``h``.
  """
  variant = as_variant(variant)
  if isinstance(x_proj, (tuple, list)):
    x_r, x_z, x_n = x_proj
  else:
    x_r, x_z, x_n = jnp.split(x_proj, 3, axis=-1)
  w, b = params["recurrent_kernel"], params["recurrent_bias"]
  dtype = dtype or jnp.result_type(x_r, h, w)
  w, b, hc = w.astype(dtype), b.astype(dtype), h.astype(dtype)
  hm = hc if recurrent_mask is None else hc * recurrent_mask.astype(dtype)  # h entering W_h
  x_r, x_z, x_n = x_r.astype(dtype), x_z.astype(dtype), x_n.astype(dtype)
  hidden = h.shape[-1]
  if variant is Variant.RESET_AFTER:
    h_r, h_z, h_n = jnp.split(add_bias(jnp.matmul(hm, w), b), 3, axis=-1)  # [..., H] x3
    r = reset_gate(x_r, h_r)
    z = update_gate(x_z, h_z)
    n = candidate_state(x_n, h_n, r)
  else:
    h_r, h_z = jnp.split(add_bias(jnp.matmul(hm, w[:, : 2 * hidden]), b[: 2 * hidden]), 2, -1)
    r = reset_gate(x_r, h_r)
    z = update_gate(x_z, h_z)
    h_n = add_bias(jnp.matmul(r * hm, w[:, 2 * hidden :]), b[2 * hidden :])
    n = candidate_state(x_n, h_n, 1)
  # Mixed precision: the products and gates run in ``dtype`` (e.g. bfloat16),
  # but the interpolation with the previous state runs in the wider of that and
  # the carry dtype, so a float32 state handed from step to step is never
  # rounded to bfloat16 (recurrentgemma keeps its RG-LRU state in float32).
  acc = h.dtype if jnp.finfo(h.dtype).bits >= jnp.finfo(n.dtype).bits else n.dtype
  return new_hidden_state(n.astype(acc), z.astype(acc), h.astype(acc)).astype(h.dtype)


def gru_step(
    params: Params,
    h: Array,
    x: Array,
    variant: str | Variant = Variant.RESET_AFTER,
    dtype=None,
) -> Array:
  """One GRU step: the new hidden state from the previous one and an input.

  Args:
    params: GRU parameters (``input_kernel [I, 3H]``, ``recurrent_kernel
      [H, 3H]``, ``input_bias [3H]``, ``recurrent_bias [3H]``).
    h: ``[..., H]`` previous hidden state.
    x: ``[..., I]`` input at this step.
    variant: ``"reset_after"`` (default) or ``"reset_before"``.
    dtype: compute dtype; ``None`` promotes the inputs.

  Returns:
    ``[..., H]`` the new hidden state, dtype of ``h``.

  >>> H, I = 3, 2
  >>> p = {"input_kernel": jnp.zeros((I, 3 * H)),
  ...      "recurrent_kernel": jnp.zeros((H, 3 * H)),
  ...      "input_bias": jnp.zeros(3 * H), "recurrent_bias": jnp.zeros(3 * H)}
  >>> gru_step(p, jnp.ones(H), jnp.ones(I))  # z = 1/2, n = 0
  Array([0.5, 0.5, 0.5], dtype=float32)
  """
  return step_from_projection(
      params, h, input_projection(params, x, dtype), variant, dtype
  )
