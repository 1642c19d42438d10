"""Batches of sequences: input checks, layouts, and the stacked multi-layer GRU as a pure function.

The modules (:class:`jaxgru.GRU`, :class:`jaxgru.MinGRU`, and their
``flax.nnx`` versions) declare parameters and call these functions, so every
API shares one set of checks and one stacking rule. Shapes follow the legend
in :mod:`jaxgru.gates`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgru import dispatch
from jaxgru import gates
from jaxgru import validation

Array = jax.Array


def param_name(layer: int, direction: int) -> str:
  """Name of the parameters of one layer and direction: ``layer_0``, ``layer_0_reverse``."""
  return f"layer_{layer}" + ("_reverse" if direction else "")


class SequenceBatch(NamedTuple):
  """Inputs of a sequence layer in the time-major layout the scans use."""

  x: Array  # [T, B, I], the inputs' dtype
  h0: Array  # [S, B, H] initial states (S = L*D for GRU, L for MinGRU), param_dtype
  seq_lengths: Array | None  # [B] int32 in [0, T], or None
  unbatched: bool  # the inputs were one [T, I] sequence


def prepare_sequences(
    name: str,
    inputs,
    *,
    time_major: bool,
    features: int,
    num_states: int,
    carry_legend: str,
    carry_detail: str,
    param_dtype,
    seq_lengths=None,
    initial_carry=None,
) -> SequenceBatch:
  """Validates a sequence layer's inputs and puts them in the time-major layout.

  Args:
    name: the layer's name for error messages (``"GRU"``, ``"MinGRU"``).
    inputs: ``[B, T, I]`` (``[T, B, I]`` when ``time_major``) or ``[T, I]``.
    time_major: the layout of ``inputs``.
    features: H.
    num_states: S, the number of initial states.
    carry_legend: the carry's shape in the legend, for errors: ``"[L*D, B, H]"``.
    carry_detail: what fixes it, for errors: ``"num_layers=2, directions=1"``.
    param_dtype: dtype of the carry.
    seq_lengths: optional ``[B]`` lengths (see :func:`validation.check_seq_lengths`).
    initial_carry: optional ``[S, B, H]`` (``[S, H]`` unbatched).

  Raises:
    ValueError, TypeError: wrong rank, non-floating inputs, a mis-shaped carry or bad lengths.
  """
  inputs = jnp.asarray(inputs)
  if inputs.ndim not in (2, 3):
    layout = "[T, B, I]" if time_major else "[B, T, I]"
    raise ValueError(f"{name} inputs must have rank 3 {layout} (or 2, [T, I], unbatched); got shape {inputs.shape}")
  if not jnp.issubdtype(inputs.dtype, jnp.floating):
    raise TypeError(f"{name} inputs must be floating point, got {inputs.dtype}")
  unbatched = inputs.ndim == 2
  x = inputs[:, None] if unbatched else (inputs if time_major else jnp.swapaxes(inputs, 0, 1))
  num_steps, batch, _ = x.shape  # x: [T, B, I]
  carry_shape = (num_states, features) if unbatched else (num_states, batch, features)
  if initial_carry is None:
    h0 = jnp.zeros((num_states, batch, features), param_dtype)
  else:
    initial_carry = jnp.asarray(initial_carry)
    if initial_carry.shape != carry_shape:
      raise ValueError(
          f"{name} initial_carry must have shape {carry_legend}={carry_shape} ({carry_detail}), "
          f"got {initial_carry.shape}"
      )
    h0 = initial_carry.reshape(num_states, batch, features).astype(param_dtype)
  if seq_lengths is not None:
    if unbatched:
      seq_lengths = jnp.reshape(jnp.asarray(seq_lengths), (1,))
    seq_lengths = validation.check_seq_lengths(seq_lengths, batch, num_steps)
  return SequenceBatch(x, h0, seq_lengths, unbatched)


def restore_layout(batch: SequenceBatch, outputs: Array, final_carry: Array, time_major: bool):
  """``outputs [T, B, F]`` and ``final_carry [S, B, H]`` back in the caller's layout."""
  if batch.unbatched:
    return outputs[:, 0], final_carry[:, 0]
  return (outputs if time_major else jnp.swapaxes(outputs, 0, 1)), final_carry


def run_stack(
    run: Callable[[int, int, gates.Params, Array, Array], tuple[Array, Array]],
    params: Sequence[Sequence[gates.Params]],
    x: Array,
    h0: Array,
    *,
    between_layers: Callable[[int, Array], Array] | None = None,
) -> tuple[Array, Array]:
  """The stacking rule of every sequence layer (GRU, MinGRU; linen and nnx): ``L`` layers of ``D`` directions.

  Layer ``l > 0`` reads the concatenated outputs of layer ``l - 1``.

  Args:
    run: ``run(l, d, params, x [T, B, I_l], h0 [B, H]) -> (ys [T, B, H], h_last [B, H])``,
      one direction of one layer.
    params: ``params[l][d]``, the parameters of layer ``l``, direction ``d``.
    x: ``[T, B, I]`` inputs.
    h0: ``[L*D, B, H]`` initial states, index ``l * D + d`` as PyTorch's ``h_0``.
    between_layers: ``f(l, y [T, B, D*H]) -> y`` applied to the outputs of
      every layer but the last (dropout between layers).

  Returns:
    ``(outputs [T, B, D*H], final_carry [L*D, B, H])``.
  """
  finals = []
  for layer, layer_params in enumerate(params):
    outputs = []
    for direction, p in enumerate(layer_params):
      ys, h_last = run(layer, direction, p, x, h0[layer * len(layer_params) + direction])  # [T, B, H], [B, H]
      outputs.append(ys)
      finals.append(h_last)
    x = outputs[0] if len(outputs) == 1 else jnp.concatenate(outputs, axis=-1)  # [T, B, D*H]
    if between_layers is not None and layer < len(params) - 1:
      x = between_layers(layer, x)
  return x, jnp.stack(finals)


def gru_stack(
    params: Sequence[Sequence[gates.Params]],
    x: Array,
    h0: Array,
    *,
    implementation: str | dispatch.Implementation = dispatch.Implementation.AUTO,
    variant: str | gates.Variant = gates.Variant.RESET_AFTER,
    seq_lengths: Array | None = None,
    unroll: int = 1,
    dtype=None,
    remat: str = "none",
    remat_segment: int | None = None,
    recurrent_masks: Sequence[Sequence[Array | None]] | None = None,
    between_layers: Callable[[int, Array], Array] | None = None,
    gate_fn=jax.nn.sigmoid,
    activation_fn=jnp.tanh,
) -> tuple[Array, Array]:
  """Runs a stack of ``L`` layers of ``D`` directions: PyTorch ``nn.GRU``'s computation as a pure function.

  Layer ``l > 0`` reads the concatenated outputs of layer ``l - 1``; the
  backward direction (``d = 1``) runs each sequence from its last valid step.

  Args:
    params: ``params[l][d]``, the four arrays of layer ``l``, direction ``d``.
    x: ``[T, B, I]`` inputs.
    h0: ``[L*D, B, H]`` initial states, index ``l * D + d`` as PyTorch's ``h_0``.
    implementation: see :class:`jaxgru.dispatch.Implementation`.
    variant, seq_lengths, unroll, dtype: as :func:`jaxgru.scan.gru_scan`.
    remat, remat_segment: as :func:`jaxgru.scan.gru_scan_remat`.
    recurrent_masks: optional ``[B, H]`` recurrent-dropout masks, ``[l][d]``.
    between_layers: ``f(l, y [T, B, D*H]) -> y`` applied to the outputs of
      every layer but the last (dropout between layers).
    gate_fn, activation_fn: as :func:`jaxgru.dispatch.run_direction`.

  Returns:
    ``(outputs [T, B, D*H], final_carry [L*D, B, H])``.
  """

  def run(layer, direction, p, x, h0):
    return dispatch.run_direction(
        implementation,
        p,
        x,
        h0,
        variant=variant,
        seq_lengths=seq_lengths,
        reverse=bool(direction),
        unroll=unroll,
        dtype=dtype,
        recurrent_mask=None if recurrent_masks is None else recurrent_masks[layer][direction],
        remat=remat,
        remat_segment=remat_segment,
        gate_fn=gate_fn,
        activation_fn=activation_fn,
    )

  return run_stack(run, params, x, h0, between_layers=between_layers)
