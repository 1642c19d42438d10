"""Batches of sequences: input checks, layouts, and the stacked multi-layer GRU as a pure function.

The modules (:class:`jaxgru.GRU`, :class:`jaxgru.MinGRU`, and their
``flax.nnx`` versions) declare parameters and call these functions, so every
API shares one set of checks and one stacking rule. Shapes follow the legend
in :mod:`jaxgru.gates`.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgru._src import dispatch
from jaxgru._src import dtypes
from jaxgru._src import gates
from jaxgru._src import validation

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
  resets: Array | None = None  # [T, B] bool, True where an episode starts, or None
  reset_carry: Array | None = None  # [S, B, H] the states a reset restores (param_dtype), or None


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
  resets=None,
  reset_carry=None,
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
    param_dtype: dtype of the carry, and of integer or boolean inputs.
    seq_lengths: optional ``[B]`` lengths (see :func:`validation.check_seq_lengths`).
    initial_carry: optional ``[S, B, H]`` (``[S, H]`` unbatched).
    resets: optional booleans in the inputs' layout, ``[B, T]`` (``[T, B]``
      when ``time_major``, ``[T]`` unbatched), true where an episode starts.
    reset_carry: optional states a reset restores, shaped as ``initial_carry``;
      by default the initial states.

  Raises:
    ValueError, TypeError: wrong rank, complex inputs, a mis-shaped carry or bad lengths.
  """
  inputs = dtypes.promote_inputs(inputs, param_dtype)  # integers and booleans, as Flax's cells
  if inputs.ndim not in (2, 3):
    layout = "[T, B, I]" if time_major else "[B, T, I]"
    raise ValueError(f"{name} inputs must have rank 3 {layout} (or 2, [T, I], unbatched); got shape {inputs.shape}")
  if not jnp.issubdtype(inputs.dtype, jnp.floating):
    raise TypeError(f"{name} inputs must be floating point, got {inputs.dtype}")
  unbatched = inputs.ndim == 2
  x = inputs[:, None] if unbatched else (inputs if time_major else jnp.swapaxes(inputs, 0, 1))
  num_steps, batch, _ = x.shape  # x: [T, B, I]
  carry_shape = (num_states, features) if unbatched else (num_states, batch, features)

  def states(argument, value):  # initial_carry or reset_carry -> [S, B, H]
    value = jnp.asarray(value)
    if value.shape != carry_shape:
      raise ValueError(
        f"{name} {argument} must have shape {carry_legend}={carry_shape} ({carry_detail}), got {value.shape}"
      )
    return value.reshape(num_states, batch, features).astype(param_dtype)

  h0 = (
    jnp.zeros((num_states, batch, features), param_dtype)
    if initial_carry is None
    else states("initial_carry", initial_carry)
  )
  if resets is not None:
    if unbatched:
      resets = validation.check_resets(resets, (num_steps,), "[T]")[:, None]
    elif time_major:
      resets = validation.check_resets(resets, (num_steps, batch), "[T, B]")
    else:
      resets = validation.check_resets(resets, (batch, num_steps), "[B, T]").T
    reset_carry = h0 if reset_carry is None else states("reset_carry", reset_carry)
  elif reset_carry is not None:
    raise ValueError(f"{name} reset_carry was given without resets; pass resets to say where episodes start")
  if seq_lengths is not None:
    if unbatched:
      seq_lengths = jnp.reshape(jnp.asarray(seq_lengths), (1,))
    seq_lengths = validation.check_seq_lengths(seq_lengths, batch, num_steps)
  return SequenceBatch(x, h0, seq_lengths, unbatched, resets, reset_carry)


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
  resets: Array | None = None,
  reset_carry: Array | None = None,
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
    implementation: see :class:`jaxgru._src.dispatch.Implementation`.
    variant, seq_lengths, unroll, dtype: as :func:`jaxgru.gru_scan`.
    resets: optional ``[T, B]`` booleans, true where an episode starts
      (:func:`jaxgru.gru_scan`); every layer and direction restarts there.
    reset_carry: optional ``[L*D, B, H]`` states a reset restores (``h0`` by default).
    remat, remat_segment: as :func:`jaxgru.gru_scan_remat`.
    recurrent_masks: optional ``[B, H]`` recurrent-dropout masks, ``[l][d]``.
    between_layers: ``f(l, y [T, B, D*H]) -> y`` applied to the outputs of
      every layer but the last (dropout between layers).
    gate_fn, activation_fn: the gates' activation (sigmoid) and the candidate's (tanh).

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
      resets=resets,
      reset_carry=None if reset_carry is None else reset_carry[layer * len(params[layer]) + direction],
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


def dropout(key: Array, rate: float, y: Array) -> Array:
  """Inverted dropout of ``y`` (Flax's ``Dropout``): zeros, and ``y / (1 - rate)`` kept with probability ``1 - rate``."""
  keep = 1.0 - rate
  return jax.lax.select(jax.random.bernoulli(key, keep, y.shape), y / keep, jnp.zeros_like(y))


def recurrent_dropout_mask(key: Array, rate: float, shape: tuple[int, int], dtype) -> Array:
  """One ``[B, H]`` recurrent-dropout mask (Gal & Ghahramani 2016): zeros and ``1 / (1 - rate)``, in ``dtype``."""
  keep = 1.0 - rate
  return jax.random.bernoulli(key, keep, shape).astype(dtype) / keep


class LayerKeys(NamedTuple):
  """The random keys of one call of a sequence layer; ``None`` turns that dropout off."""

  dropout: Array | None = None  # PRNG key of the dropout between layers
  recurrent_dropout: Array | None = None  # PRNG key of the recurrent-dropout masks (GRU only)


def sequence_layer(
  name: str,
  inputs,
  *,
  obtain_params: Callable[[int], Sequence[Sequence[Mapping]]],
  run: Callable[..., tuple[Array, Array]],
  features: int,
  num_layers: int,
  num_directions: int,
  directional: bool,
  time_major: bool,
  param_dtype,
  dropout_rate: float,
  keys: LayerKeys,
  expected_input_features: int | None,
  seq_lengths=None,
  initial_carry=None,
  resets=None,
  reset_carry=None,
) -> tuple[Array, Array]:
  """The body of every sequence layer (GRU, MinGRU; linen and nnx): the modules only obtain parameters and keys.

  Args:
    name: the layer's class name for error messages.
    inputs: ``[B, T, I]`` (``[T, B, I]`` when ``time_major``) or ``[T, I]``.
    obtain_params: ``I -> params[l][d]``: the module's parameters for inputs of width I.
    run: ``run(params, batch, between_layers) -> (outputs [T, B, D*H], finals [L*D, B, H])``
      on the time-major :class:`SequenceBatch`.
    features, num_layers, num_directions, time_major, param_dtype: the layer's sizes and options.
    directional: the layer has a ``bidirectional`` option (its carry is ``[L*D, B, H]``, not ``[L, B, H]``).
    dropout_rate: rate of the dropout between layers.
    keys: :class:`LayerKeys` of this call.
    expected_input_features: I of existing parameters (``None`` when they are being made).
    seq_lengths, initial_carry, resets, reset_carry: as :meth:`jaxgru.GRU.__call__`.

  Returns:
    ``(outputs, final_carry)`` in the caller's layout.
  """
  num_states = num_layers * num_directions
  detail = f"num_layers={num_layers}" + (f", directions={num_directions}" if directional else "")
  batch = prepare_sequences(
    name,
    inputs,
    time_major=time_major,
    features=features,
    num_states=num_states,
    carry_legend="[L*D, B, H]" if directional else "[L, B, H]",
    carry_detail=detail,
    param_dtype=param_dtype,
    seq_lengths=seq_lengths,
    initial_carry=initial_carry,
    resets=resets,
    reset_carry=reset_carry,
  )
  if expected_input_features is not None:
    validation.check_input_width(name, batch.x.shape[-1], expected_input_features)
  params = obtain_params(batch.x.shape[-1])
  between = None
  if dropout_rate and keys.dropout is not None:
    between = lambda layer, y: dropout(jax.random.fold_in(keys.dropout, layer), dropout_rate, y)  # noqa: E731
  outputs, finals = run(params, batch, between)
  return restore_layout(batch, outputs, finals, time_major)


def gru_layer(
  obtain_params: Callable[[int], Sequence[Sequence[gates.Params]]],
  inputs,
  *,
  features: int,
  options: Mapping,
  keys: LayerKeys,
  expected_input_features: int | None,
  seq_lengths=None,
  initial_carry=None,
  resets=None,
  reset_carry=None,
) -> tuple[Array, Array]:
  """Runs a GRU layer (:class:`jaxgru.GRU`, :class:`jaxgru.nnx.GRU`) from its parameters and keys.

  Args:
    obtain_params: ``I -> params[l][d]``, the four arrays of each layer and direction.
    inputs, seq_lengths, initial_carry, resets, reset_carry: as :meth:`jaxgru.GRU.__call__`.
    features: H.
    options: the layer's the layer.
    keys: :class:`LayerKeys`; ``recurrent_dropout`` draws one ``[B, H]`` mask
      per layer and direction (:func:`recurrent_dropout_mask`).
    expected_input_features: I of existing parameters, or ``None``.

  Returns:
    ``(outputs [B, T, D*H], final_carry [L*D, B, H])`` in the caller's layout.
  """
  num_directions = 2 if options["bidirectional"] else 1
  rate = options["recurrent_dropout"]

  def run(params, batch, between):
    x = batch.x
    masks = None
    if rate and keys.recurrent_dropout is not None:
      shape, n = (x.shape[1], features), num_directions
      masks = [
        [
          recurrent_dropout_mask(
            jax.random.fold_in(keys.recurrent_dropout, l * n + d), rate, shape, options["param_dtype"]
          )
          for d in range(n)
        ]
        for l in range(len(params))
      ]
    stack = ("implementation", "variant", "unroll", "dtype", "remat", "remat_segment", "gate_fn", "activation_fn")
    return gru_stack(
      params,
      x,
      batch.h0,
      seq_lengths=batch.seq_lengths,
      resets=batch.resets,
      reset_carry=batch.reset_carry,
      recurrent_masks=masks,
      between_layers=between,
      **{k: options[k] for k in stack},
    )

  return sequence_layer(
    "GRU",
    inputs,
    obtain_params=obtain_params,
    run=run,
    features=features,
    num_layers=options["num_layers"],
    num_directions=num_directions,
    directional=True,
    time_major=options["time_major"],
    param_dtype=options["param_dtype"],
    dropout_rate=options["dropout"],
    keys=keys,
    expected_input_features=expected_input_features,
    seq_lengths=seq_lengths,
    initial_carry=initial_carry,
    resets=resets,
    reset_carry=reset_carry,
  )
