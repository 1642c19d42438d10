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
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgru._src import dtypes
from jaxgru._src import validation

Array = jax.Array
Params = Mapping[str, Array]

__all__ = (
  "PARAM_NAMES",
  "Variant",
  "candidate_state",
  "gru_step",
  "input_projection",
  "new_hidden_state",
  "reset_gate",
  "update_gate",
)

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


def reset_gate(x_r: Array, h_r: Array, gate_fn=jax.nn.sigmoid) -> Array:
  r"""Reset gate :math:`r = \sigma(x_r + h_r)`.

  Args:
    x_r: ``[..., H]`` input part, :math:`W_{ir} x + b_{ir}`.
    h_r: ``[..., H]`` recurrent part, :math:`W_{hr} h + b_{hr}`.
    gate_fn: the gate activation :math:`\sigma` (Flax's ``gate_fn``).

  Returns:
    ``[..., H]`` gate values in (0, 1).

  >>> reset_gate(jnp.zeros(2), jnp.zeros(2))
  Array([0.5, 0.5], dtype=float32)
  """
  return gate_fn(x_r + h_r)  # Cho et al. 2014, eq. 5


def update_gate(x_z: Array, h_z: Array, gate_fn=jax.nn.sigmoid) -> Array:
  r"""Update gate :math:`z = \sigma(x_z + h_z)`.

  Args:
    x_z: ``[..., H]`` input part, :math:`W_{iz} x + b_{iz}`.
    h_z: ``[..., H]`` recurrent part, :math:`W_{hz} h + b_{hz}`.
    gate_fn: the gate activation :math:`\sigma`.

  Returns:
    ``[..., H]`` gate values in (0, 1).

  >>> update_gate(jnp.zeros(2), jnp.zeros(2))
  Array([0.5, 0.5], dtype=float32)
  """
  return gate_fn(x_z + h_z)  # Cho et al. 2014, eq. 6


def candidate_state(x_n: Array, h_n: Array, r: Array, activation_fn=jnp.tanh) -> Array:
  r"""Candidate state :math:`n = \tanh(x_n + r \odot h_n)`.

  For ``reset_after`` pass :math:`h_n = W_{hn} h + b_{hn}`; for ``reset_before``
  pass :math:`h_n = W_{hn} (r \odot h) + b_{hn}` and ``r = 1``.

  Args:
    x_n: ``[..., H]`` input part, :math:`W_{in} x + b_{in}`.
    h_n: ``[..., H]`` recurrent part.
    r: ``[..., H]`` reset gate (or a scalar 1).
    activation_fn: the candidate's activation :math:`\tanh` (Flax's ``activation_fn``).

  Returns:
    ``[..., H]`` candidate values in (-1, 1).

  >>> candidate_state(jnp.zeros(2), jnp.ones(2), jnp.zeros(2))
  Array([0., 0.], dtype=float32)
  """
  return activation_fn(x_n + r * h_n)  # Cho et al. 2014, eq. 8


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
    dtype: compute dtype; ``None`` promotes ``x`` and the kernel (the one dtype rule of the library).

  Returns:
    ``[..., 3H]`` the projections ``[x_r | x_z | x_n]``.
  """
  w, b = params["input_kernel"], params["input_bias"]
  dtype = dtypes.compute_dtype(dtype, x, w)
  # One 2-D product: with x of rank 3, the backward's weight gradient (a
  # contraction over T and B) ran much slower on XLA:CPU (experiments/results/speed_notes.md).
  x2d = x.reshape(-1, x.shape[-1]).astype(dtype)  # [T*B, I]
  y = jnp.matmul(x2d, w.astype(dtype))  # [T*B, 3H]
  y = add_bias(y, b.astype(dtype))
  return y.reshape(*x.shape[:-1], w.shape[-1])


class Activations(NamedTuple):
  """What one step computes besides the new state: all a hand-written backward pass needs."""

  r: Array  # [..., H] reset gate, gate dtype.
  z: Array  # [..., H] update gate.
  n: Array  # [..., H] candidate state.
  # reset_after: a_n = W_hn h + b_hn; reset_before: r * h, the input of W_hn.
  aux: Array  # [..., H]


def recurrent_blocks(params: Params, variant: Variant, dtype, *, per_gate: bool = False) -> tuple[tuple, tuple]:
  """The recurrent kernel ``[H, 3H]`` and bias ``[3H]`` as the column blocks :func:`step` multiplies by.

  ``per_gate``: three ``[H, H]`` blocks (what a Pallas kernel needs: Triton
  cannot slice a tensor). Otherwise as few blocks as the variant allows: one
  ``[H, 3H]`` product whose result is sliced inside the step (for
  ``reset_before``, ``[H, 2H]`` and ``[H, H]``), which compiled faster than
  three products on XLA:CPU and ran as fast (experiments/results/speed_notes.md). Call it once, outside the
  loop: XLA does not hoist loop-invariant slices. Biases come back as
  ``[1, width]`` rows, everything cast to ``dtype``.
  """
  w, b = params["recurrent_kernel"].astype(dtype), params["recurrent_bias"].astype(dtype)[None, :]
  hidden = w.shape[0]
  if per_gate:
    cuts = (hidden, 2 * hidden)
  else:
    cuts = () if variant is Variant.RESET_AFTER else (2 * hidden,)
  return tuple(jnp.split(w, cuts, axis=-1)), tuple(jnp.split(b, cuts, axis=-1))


def step(
  blocks: tuple[tuple, tuple],
  h: Array,
  x_proj: tuple[Array, Array, Array],
  variant: Variant,
  dtype,
  *,
  gate_dtype=None,
  recurrent_mask: Array | None = None,
  gate_fn=jax.nn.sigmoid,
  activation_fn=jnp.tanh,
) -> tuple[Array, Activations]:
  """One GRU step from the input projection: every implementation runs this function.

  Args:
    blocks: ``(kernels, biases)`` from :func:`recurrent_blocks`.
    h: ``[B, H]`` previous state; its dtype is the carry dtype.
    x_proj: ``(x_r, x_z, x_n)``, each ``[B, H]``: the step's input projection,
      split per gate (cheaper to scan over on XLA:CPU than one wide array).
    variant: the :class:`Variant`.
    dtype: dtype of the products' operands.
    gate_dtype: dtype of the products' results and the gate maths (default
      ``dtype``; a Pallas kernel passes float32, as Triton has no bfloat16 division).
    recurrent_mask: optional ``[B, H]`` recurrent-dropout mask; it multiplies
      ``h`` where it enters the recurrent products only (Gal & Ghahramani 2016),
      never the interpolation with ``z``, so the memory path is never dropped.
    gate_fn, activation_fn: :math:`\sigma` of the gates and :math:`\tanh` of
      the candidate (only the ``"scan"`` implementation runs others: the
      hand-written backward passes assume these two).

  Returns:
    ``(h_new [B, H], activations)``; ``h_new`` has the dtype of ``h``.
  """
  w, b = blocks
  gate_dtype = gate_dtype or dtype
  x_r, x_z, x_n = (x.astype(gate_dtype) for x in x_proj)
  hidden = h.shape[-1]
  hm = h.astype(dtype)
  if recurrent_mask is not None:
    hm = hm * recurrent_mask.astype(dtype)  # the state entering W_h

  def products(u, kernels, biases):  # u times each block, as per-gate [B, H] pieces
    pieces = []
    for w_blk, b_blk in zip(kernels, biases):
      a = jnp.matmul(u.astype(dtype), w_blk, preferred_element_type=gate_dtype) + b_blk.astype(gate_dtype)
      pieces += [a[:, k * hidden : (k + 1) * hidden] for k in range(w_blk.shape[-1] // hidden)]
    return pieces

  if variant is Variant.RESET_AFTER:
    a_r, a_z, aux = products(hm, w, b)  # aux = a_n = h W_hn + b_hn
    r = reset_gate(x_r, a_r, gate_fn)
    z = update_gate(x_z, a_z, gate_fn)
    n = candidate_state(x_n, aux, r, activation_fn)
  else:
    a_r, a_z = products(hm, w[:-1], b[:-1])
    r = reset_gate(x_r, a_r, gate_fn)
    z = update_gate(x_z, a_z, gate_fn)
    aux = r * hm.astype(gate_dtype)  # the input of W_hn
    (a_n,) = products(aux, w[-1:], b[-1:])
    n = candidate_state(x_n, a_n, 1, activation_fn)
  acc = dtypes.interpolation_dtype(h.dtype, gate_dtype)  # a float32 carry stays float32
  h_new = new_hidden_state(n.astype(acc), z.astype(acc), h.astype(acc)).astype(h.dtype)
  return h_new, Activations(r, z, n, aux)


def split_gates(a: Array) -> tuple[Array, Array, Array]:
  """``[..., 3H]`` -> ``(a_r, a_z, a_n)``, each ``[..., H]``."""
  return tuple(jnp.split(a, 3, axis=-1))


def gru_step(
  params: Params,
  h: Array,
  x: Array,
  variant: str | Variant = Variant.RESET_AFTER,
  dtype=None,
  *,
  gate_fn=jax.nn.sigmoid,
  activation_fn=jnp.tanh,
) -> Array:
  """One GRU step: the new hidden state from the previous one and an input.

  >>> H, I = 3, 2
  >>> p = {"input_kernel": jnp.zeros((I, 3 * H)),
  ...      "recurrent_kernel": jnp.zeros((H, 3 * H)),
  ...      "input_bias": jnp.zeros(3 * H), "recurrent_bias": jnp.zeros(3 * H)}
  >>> gru_step(p, jnp.ones(H), jnp.ones(I))  # z = 1/2, n = 0
  Array([0.5, 0.5, 0.5], dtype=float32)

  Args:
    params: GRU parameters (``input_kernel [I, 3H]``, ``recurrent_kernel
      [H, 3H]``, ``input_bias [3H]``, ``recurrent_bias [3H]``).
    h: ``[..., H]`` previous hidden state; its dtype is the carry dtype.
    x: ``[..., I]`` input at this step, with the leading axes of ``h``.
    variant: ``"reset_after"`` (default) or ``"reset_before"``.
    dtype: compute dtype; ``None`` promotes ``x``, ``h`` and the parameters
      (the one dtype rule of the library).
    gate_fn, activation_fn: the gate activation (sigmoid) and the candidate's
      (tanh), as in Flax's cells.

  Returns:
    ``[..., H]`` the new hidden state, dtype of ``h``.

  Raises:
    ValueError, TypeError: mis-shaped parameters, or ``h`` and ``x`` that do
      not fit them or each other (the message names the argument).
  """
  hidden = validation.check_gru_params(params)
  h = validation.check_array("h", h, rank=tuple(range(1, 33)), legend="[..., H]")
  x = validation.check_array("x", x, rank=tuple(range(1, 33)), legend="[..., I]")
  features = params["input_kernel"].shape[0]
  if h.shape[-1] != hidden:
    raise ValueError(f"h must have shape [..., H] with H={hidden} (recurrent_kernel), got {tuple(h.shape)}")
  validation.check_input_width("x", x.shape[-1], features)
  if x.shape[:-1] != h.shape[:-1]:
    raise ValueError(f"x {tuple(x.shape)} and h {tuple(h.shape)} must have the same leading (batch) axes")
  variant = as_variant(variant)
  dtype = dtypes.compute_dtype(dtype, x, h, params["input_kernel"], params["recurrent_kernel"])
  flat = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731 - the step takes [B, H]
  x_proj = split_gates(input_projection(params, flat(x), dtype))
  h_new, _ = step(
    recurrent_blocks(params, variant, dtype),
    flat(h),
    x_proj,
    variant,
    dtype,
    gate_fn=gate_fn,
    activation_fn=activation_fn,
  )
  return h_new.reshape(h.shape)
