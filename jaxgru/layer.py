"""The multi-layer, optionally bidirectional GRU layer (PyTorch ``nn.GRU`` semantics)."""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgru import cell as cell_lib
from jaxgru import gates
from jaxgru import scan

Array = jax.Array


def param_name(layer: int, direction: int) -> str:
  """Name of the parameter collection of one layer and direction: ``layer_0``, ``layer_0_reverse``."""
  return f"layer_{layer}" + ("_reverse" if direction else "")


class _DirectionParams(nn.Module):
  """Holds the parameters of one layer and direction; see :func:`cell.declare_params`."""

  features: int
  param_dtype: Any
  kernel_init: Any
  recurrent_kernel_init: Any
  bias_init: Any

  @nn.compact
  def __call__(self, input_features: int) -> dict[str, Array]:
    return cell_lib.declare_params(
        self,
        input_features,
        self.features,
        kernel_init=self.kernel_init,
        recurrent_kernel_init=self.recurrent_kernel_init,
        bias_init=self.bias_init,
        param_dtype=self.param_dtype,
    )


def check_seq_lengths(seq_lengths, batch: int, num_steps: int) -> Array:
  """Validates ``seq_lengths`` (``[B]`` integers in ``[0, T]``) and returns it as an array.

  The range is checked only when the lengths are concrete; under ``jit``
  lengths are clipped to ``[0, T]`` instead (a length above ``T`` acts as ``T``,
  a negative one as 0).
  """
  if isinstance(seq_lengths, (list, tuple)):
    seq_lengths = np.asarray(seq_lengths)
  if not hasattr(seq_lengths, "shape") or not hasattr(seq_lengths, "dtype"):
    raise TypeError(f"seq_lengths must be an integer array of shape [B]={batch}, got {type(seq_lengths).__name__}")
  if seq_lengths.shape != (batch,):
    raise ValueError(f"seq_lengths must have shape [B]=({batch},), got {tuple(seq_lengths.shape)}")
  if not jnp.issubdtype(seq_lengths.dtype, jnp.integer):
    raise TypeError(f"seq_lengths must have an integer dtype, got {seq_lengths.dtype}")
  if not isinstance(seq_lengths, jax.core.Tracer):
    concrete = np.asarray(seq_lengths)
    if concrete.size and (concrete.min() < 0 or concrete.max() > num_steps):
      raise ValueError(
          f"seq_lengths must lie in [0, T={num_steps}], got values from {concrete.min()} to {concrete.max()}"
      )
  return jnp.clip(jnp.asarray(seq_lengths), 0, num_steps).astype(jnp.int32)


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
    seq_lengths: optional ``[B]`` lengths (see :func:`check_seq_lengths`).
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
    seq_lengths = check_seq_lengths(seq_lengths, batch, num_steps)
  return SequenceBatch(x, h0, seq_lengths, unbatched)


def restore_layout(batch: SequenceBatch, outputs: Array, final_carry: Array, time_major: bool):
  """``outputs [T, B, F]`` and ``final_carry [S, B, H]`` back in the caller's layout."""
  if batch.unbatched:
    return outputs[:, 0], final_carry[:, 0]
  return (outputs if time_major else jnp.swapaxes(outputs, 0, 1)), final_carry


class GRU(nn.Module):
  r"""Multi-layer GRU over sequences, numerically equal to ``torch.nn.GRU``.

  Each layer and direction computes, for every step :math:`t`,

  .. math::

     r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
     z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
     n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
     h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

  (``variant="reset_before"``: :math:`n_t = \tanh(W_{in} x_t + b_{in} +
  W_{hn}(r_t \odot h_{t-1}) + b_{hn})`). With ``implementation="scan"`` or
  ``"custom_vjp"`` the input projections of all steps are one matrix product
  before the scan, which then does only the recurrent product and the gates;
  ``"custom_vjp_in_loop"`` projects each step's input inside the loop. Layer ``l > 0`` reads the concatenated outputs of layer
  ``l - 1`` (dropout between layers when training).

  Parameters live under ``params["layer_{l}"]`` and, for the backward
  direction, ``params["layer_{l}_reverse"]``, each with ``input_kernel
  [I_l, 3H]``, ``recurrent_kernel [H, 3H]``, ``input_bias [3H]``,
  ``recurrent_bias [3H]`` (gates ``r, z, n``); see :mod:`jaxgru.interop`.

  Attributes:
    features: H.
    num_layers: L, stacked layers.
    bidirectional: D = 2 when true.
    dropout: dropout rate on the outputs of every layer but the last
      (``'dropout'`` RNG stream; off when ``deterministic``).
    variant: ``"reset_after"`` (PyTorch) or ``"reset_before"`` (Cho et al.).
    unroll: time steps per ``lax.scan`` iteration.
    implementation: how the recurrence runs (:class:`jaxgru.scan.Implementation`):
      ``"auto"`` (default), ``"scan"``, ``"custom_vjp"``,
      ``"custom_vjp_in_loop"`` or ``"pallas"``; all give the same numbers.
      ``recurrent_dropout`` and ``remat`` need the ``"scan"`` implementation
      (``"auto"`` picks it when either is on).
    time_major: inputs and outputs are ``[T, B, ...]`` instead of ``[B, T, ...]``.
    dtype: compute dtype (``None``: promote inputs and parameters).
    param_dtype: parameter dtype; also the carry dtype.
    recurrent_dropout: rate of dropout on the hidden state where it enters the
      recurrent products (Gal & Ghahramani 2016; Keras ``recurrent_dropout``):
      one ``[B, H]`` mask per layer and direction, the same at every step of a
      sequence, drawn from the ``'recurrent_dropout'`` RNG stream; off when
      ``deterministic``.
    remat: ``"none"`` (default), ``"step"`` or ``"segments"``
      (:class:`jaxgru.scan.Remat`): recompute activations in the backward pass
      instead of storing them, to train on long sequences in less memory.
    remat_segment: steps per checkpointed segment with ``remat="segments"``;
      must divide T and be a multiple of ``unroll`` (``None``: the largest
      divisor of T up to ``sqrt(T)``).

  Example:

  >>> gru = GRU(features=8, num_layers=2, bidirectional=True)
  >>> x = jnp.ones((4, 10, 3))  # [B, T, I]
  >>> variables = gru.init(jax.random.key(0), x)
  >>> y, h_n = gru.apply(variables, x, seq_lengths=jnp.array([10, 7, 1, 0]))
  >>> y.shape, h_n.shape  # [B, T, D*H], [L*D, B, H]
  ((4, 10, 16), (4, 4, 8))
  """

  features: int
  num_layers: int = 1
  bidirectional: bool = False
  dropout: float = 0.0
  variant: str = "reset_after"
  unroll: int = 1
  implementation: str = "auto"
  time_major: bool = False
  dtype: Any = None
  param_dtype: Any = jnp.float32
  kernel_init: Any = nn.initializers.lecun_normal()
  recurrent_kernel_init: Any = cell_lib.stacked_orthogonal(3)
  bias_init: Any = nn.initializers.zeros_init()
  recurrent_dropout: float = 0.0
  remat: str = "none"
  remat_segment: int | None = None

  def __post_init__(self):
    gates.as_variant(self.variant)
    scan.as_implementation(self.implementation)
    for name in ("features", "num_layers", "unroll"):
      value = getattr(self, name)
      if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"GRU {name} must be a positive integer, got {value!r}")
    if not 0.0 <= self.dropout < 1.0:
      raise ValueError(f"GRU dropout must be in [0, 1), got {self.dropout!r}")
    if not 0.0 <= self.recurrent_dropout < 1.0:
      raise ValueError(f"GRU recurrent_dropout must be in [0, 1), got {self.recurrent_dropout!r}")
    remat = scan.as_remat(self.remat)
    if self.remat_segment is not None:
      segment = self.remat_segment
      if not isinstance(segment, (int, np.integer)) or isinstance(segment, bool) or segment < 1:
        raise ValueError(f"GRU remat_segment must be a positive integer or None, got {segment!r}")
      if remat is not scan.Remat.SEGMENTS:
        raise ValueError(f"GRU remat_segment={segment} needs remat='segments', got remat={self.remat!r}")
      if segment % self.unroll:
        raise ValueError(f"GRU remat_segment={segment} must be a multiple of unroll={self.unroll}")
    if (self.recurrent_dropout or remat is not scan.Remat.NONE) and scan.as_implementation(
        self.implementation
    ) not in (scan.Implementation.AUTO, scan.Implementation.SCAN):
      raise ValueError(
          f"GRU recurrent_dropout and remat need implementation='scan' (or 'auto'), "
          f"got implementation={self.implementation!r}"
      )
    cell_lib.check_floating("dtype", self.dtype)
    cell_lib.check_floating("param_dtype", self.param_dtype)
    super().__post_init__()

  @property
  def num_directions(self) -> int:
    """D: 2 when bidirectional, else 1."""
    return 2 if self.bidirectional else 1

  @nn.compact
  def __call__(
      self,
      inputs: Array,
      *,
      seq_lengths: Array | None = None,
      initial_carry: Array | None = None,
      deterministic: bool = True,
  ) -> tuple[Array, Array]:
    """Runs the GRU over a batch of sequences.

    Args:
      inputs: ``[B, T, I]`` (``[T, B, I]`` when ``time_major``); a single
        unbatched sequence ``[T, I]`` is accepted too.
      seq_lengths: optional ``[B]`` integer lengths in ``[0, T]``. Outputs at
        padded steps are zero, padded steps leave the state unchanged, and the
        backward direction starts at each sequence's last valid step.
        Concrete out-of-range lengths raise; under ``jit`` they are clipped to
        ``[0, T]``.
      initial_carry: optional ``[L*D, B, H]`` initial states ordered as
        PyTorch's ``h_0`` (index ``layer * D + direction``); zeros by default.
      deterministic: disables dropout between layers and recurrent dropout
        when true.

    Returns:
      ``(outputs, final_carry)``: ``outputs [B, T, D*H]`` (``[T, B, D*H]`` when
      ``time_major``) and ``final_carry [L*D, B, H]``, the state after each
      sequence's last valid step, ordered as PyTorch's ``h_n``.
    """
    num_states = self.num_layers * self.num_directions
    x, h0, seq_lengths, _ = batch_in = prepare_sequences(
        "GRU",
        inputs,
        time_major=self.time_major,
        features=self.features,
        num_states=num_states,
        carry_legend="[L*D, B, H]",
        carry_detail=f"num_layers={self.num_layers}, directions={self.num_directions}",
        param_dtype=self.param_dtype,
        seq_lengths=seq_lengths,
        initial_carry=initial_carry,
    )
    batch = x.shape[1]

    finals = []
    for layer in range(self.num_layers):
      outputs = []
      for direction in range(self.num_directions):
        params = _DirectionParams(
            self.features,
            self.param_dtype,
            self.kernel_init,
            self.recurrent_kernel_init,
            self.bias_init,
            name=param_name(layer, direction),
        )(x.shape[-1])
        run = dict(
            variant=self.variant,
            seq_lengths=seq_lengths,
            reverse=bool(direction),
            unroll=self.unroll,
            dtype=self.dtype,
        )
        implementation = self.implementation
        if self.recurrent_dropout and not deterministic:
          keep = 1.0 - self.recurrent_dropout
          key = self.make_rng("recurrent_dropout")  # a fresh key per layer and direction
          mask = jax.random.bernoulli(key, keep, (batch, self.features))  # [B, H]
          run["recurrent_mask"] = mask.astype(self.param_dtype) / keep
          implementation = scan.Implementation.SCAN  # only gru_scan takes a mask
        h0_dir = h0[layer * self.num_directions + direction]  # [B, H]
        if scan.as_remat(self.remat) is not scan.Remat.NONE:
          # Takes the raw inputs: the projection is recomputed per block.
          ys, h_last = scan.gru_scan_remat(
              params, x, h0_dir, remat=self.remat, remat_segment=self.remat_segment, **run
          )
        else:
          # x: [T, B, I]; the implementation places the input projection.
          ys, h_last = scan.run_direction(implementation, params, x, h0_dir, **run)
        outputs.append(ys)  # [T, B, H]
        finals.append(h_last)  # [B, H]
      x = outputs[0] if len(outputs) == 1 else jnp.concatenate(outputs, axis=-1)  # [T, B, D*H]
      if self.dropout and layer < self.num_layers - 1:
        x = nn.Dropout(rate=self.dropout)(x, deterministic=deterministic)

    return restore_layout(batch_in, x, jnp.stack(finals), self.time_major)  # finals: [L*D, B, H]
