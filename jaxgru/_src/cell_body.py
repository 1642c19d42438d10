"""The body of both GRU cells (linen and nnx): one step with Flax's input rules. Imports no Flax API."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgru._src import dtypes
from jaxgru._src import gates
from jaxgru._src import validation

Array = jax.Array


def _broadcasts(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
  try:
    return jnp.broadcast_shapes(shape, target) == target
  except ValueError:
    return False


def cell_step(owner: str, cell, params, carry, inputs) -> Array:
  """One step of a GRU cell (linen or nnx): :func:`jaxgru.gates.gru_step` with Flax's input rules.

  As Flax's cells: integer and boolean inputs are promoted to ``param_dtype``;
  a carry whose leading axes broadcast to the inputs' (a ``[H]`` carry with
  ``[B, I]`` inputs) is broadcast; complex inputs or parameters make the
  carry and the computation complex (a real carry would silently drop the
  imaginary part).

  Args:
    owner: the class name for the messages.
    cell: the cell, for its options ``features`` (H), ``variant``, ``dtype``,
      ``param_dtype``, ``gate_fn`` and ``activation_fn``.
    params: the four parameter arrays (absent biases as zeros).
    carry: ``[..., H]`` hidden state.
    inputs: ``[..., I]`` input.

  Returns:
    ``[..., H]`` the new carry (complex when anything was complex).

  Raises:
    ValueError: a carry or input that does not fit the parameters (naming the cell).
  """
  inputs = dtypes.promote_inputs(inputs, cell.param_dtype)
  carry = jnp.asarray(carry)
  hidden = params["recurrent_kernel"].shape[0]
  validation.check_input_width(owner, inputs.shape[-1], params["input_kernel"].shape[0])
  lead = inputs.shape[:-1]
  if carry.shape[-1:] != (hidden,) or not _broadcasts(carry.shape[:-1], lead):
    raise ValueError(
      f"{owner} carry has shape {carry.shape}; expected {lead + (hidden,)} (or one that broadcasts "
      f"to it, such as ({hidden},)) for inputs of shape {inputs.shape} and features={hidden}"
    )
  carry = jnp.broadcast_to(carry, lead + (hidden,))
  dtype = cell.dtype
  if any(jnp.issubdtype(a.dtype, jnp.complexfloating) for a in (carry, inputs, params["input_kernel"])) or (
    dtype is not None and jnp.issubdtype(dtype, jnp.complexfloating)
  ):
    dtype = dtypes.compute_dtype(None, carry, inputs, cell.param_dtype, dtype)
    carry = carry.astype(dtype)
  return gates.gru_step(
    params, carry, inputs, cell.variant, dtype, gate_fn=cell.gate_fn, activation_fn=cell.activation_fn
  )
