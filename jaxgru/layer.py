"""The multi-layer, optionally bidirectional GRU layer (PyTorch ``nn.GRU`` semantics)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgru import cell as cell_lib
from jaxgru import dispatch
from jaxgru import gates
from jaxgru import scan
from jaxgru import sequences
from jaxgru import validation
from jaxgru.sequences import param_name

Array = jax.Array


def check_options(
    owner: str,
    *,
    features: int,
    num_layers: int,
    bidirectional: bool,
    dropout: float,
    variant: str,
    unroll: int,
    implementation: str,
    time_major: bool,
    dtype,
    param_dtype,
    recurrent_dropout: float,
    remat: str,
    remat_segment: int | None,
    use_bias: bool,
    gate_fn,
    activation_fn,
) -> None:
  """Checks the options of a GRU layer (:class:`GRU`, :class:`jaxgru.nnx.GRU`) at construction.

  Args:
    owner: the class name for the messages (``"GRU"``).
    features, ...: the layer's options (see :class:`GRU`).

  Raises:
    ValueError, TypeError: naming the option, what it was and what was expected;
      also an explicit ``implementation`` that cannot serve the other options
      (:func:`jaxgru.dispatch.resolve_implementation`).
  """
  gates.as_variant(variant)
  dispatch.as_implementation(implementation)
  for name, value in (("features", features), ("num_layers", num_layers), ("unroll", unroll)):
    validation.check_positive_int(f"{owner} {name}", value)
  validation.check_positive_int(f"{owner} remat_segment", remat_segment, allow_none=True)
  for name, value in (("bidirectional", bidirectional), ("time_major", time_major), ("use_bias", use_bias)):
    validation.check_bool(f"{owner} {name}", value)
  validation.check_rate(f"{owner} dropout", dropout)
  validation.check_rate(f"{owner} recurrent_dropout", recurrent_dropout)
  validation.check_callable(f"{owner} gate_fn", gate_fn)
  validation.check_callable(f"{owner} activation_fn", activation_fn)
  remat = scan.as_remat(remat)
  if remat_segment is not None:
    if remat is not scan.Remat.SEGMENTS:
      raise ValueError(f"{owner} remat_segment={remat_segment} needs remat='segments', got remat={remat.value!r}")
    if remat_segment % unroll:
      raise ValueError(f"{owner} remat_segment={remat_segment} must be a multiple of unroll={unroll}")
  # An explicit implementation that cannot serve these options fails here, at construction; the
  # backend is checked when the layer runs (a model may be built on one machine, run on another).
  dispatch.resolve_implementation(
      implementation,
      backend="gpu",
      hidden=features,
      remat=remat,
      recurrent_dropout=bool(recurrent_dropout),
      custom_gates=dispatch.custom_gates(gate_fn, activation_fn),
  )
  validation.check_floating(f"{owner} dtype", dtype)
  validation.check_floating(f"{owner} param_dtype", param_dtype)


# The options a GRU layer has besides its sizes and initializers, the same for
# :class:`GRU` and :class:`jaxgru.nnx.GRU` (what :mod:`jaxgru.interop` carries between them).
OPTIONS = (
    "num_layers", "bidirectional", "dropout", "variant", "unroll", "implementation", "time_major", "dtype",
    "param_dtype", "recurrent_dropout", "remat", "remat_segment", "use_bias", "gate_fn", "activation_fn",
)  # fmt: skip


def stack_options(layer) -> dict:
  """The options of ``layer`` (a :class:`GRU` or :class:`jaxgru.nnx.GRU`) that :func:`jaxgru.sequences.gru_stack` takes."""
  names = ("implementation", "variant", "unroll", "dtype", "remat", "remat_segment", "gate_fn", "activation_fn")
  return {name: getattr(layer, name) for name in names}


class _DirectionParams(nn.Module):
  """Holds the parameters of one layer and direction; see :func:`cell.declare_params`."""

  features: int
  param_dtype: Any
  kernel_init: Any
  recurrent_kernel_init: Any
  bias_init: Any
  use_bias: bool

  @nn.compact
  def __call__(self, input_features: int) -> dict[str, Array]:
    return cell_lib.declare_params(self, input_features)


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
  ``recurrent_bias [3H]`` (gates ``r, z, n``; no biases with
  ``use_bias=False``); see :mod:`jaxgru.interop`.

  Attributes:
    features: H.
    num_layers: L, stacked layers.
    bidirectional: D = 2 when true.
    dropout: dropout rate on the outputs of every layer but the last
      (``'dropout'`` RNG stream; off when ``deterministic``).
    variant: ``"reset_after"`` (PyTorch) or ``"reset_before"`` (Cho et al.).
    unroll: time steps per ``lax.scan`` iteration.
    implementation: how the recurrence runs (:class:`jaxgru.Implementation`,
      chosen by :func:`jaxgru.dispatch.resolve_implementation`): ``"auto"``
      (default), ``"scan"``, ``"custom_vjp"``, ``"custom_vjp_in_loop"`` or
      ``"pallas"`` (GPU only, not yet measured on hardware); all give the
      same numbers. ``recurrent_dropout`` and ``remat`` need ``"scan"``
      (``"auto"`` picks it when either is on; another explicit choice raises).
    time_major: inputs and outputs are ``[T, B, ...]`` instead of ``[B, T, ...]``.
    dtype: compute dtype (``None``: promote inputs and parameters).
    param_dtype: parameter dtype; also the carry dtype.
    recurrent_dropout: rate of dropout on the hidden state where it enters the
      recurrent products (Gal & Ghahramani 2016; Keras ``recurrent_dropout``):
      one ``[B, H]`` mask per layer and direction, the same at every step of a
      sequence, drawn from the ``'recurrent_dropout'`` RNG stream; off when
      ``deterministic``.
    remat: ``"none"`` (default), ``"step"`` or ``"segments"``
      (:class:`jaxgru.Remat`): recompute activations in the backward pass
      instead of storing them, to train on long sequences in less memory.
    remat_segment: steps per checkpointed segment with ``remat="segments"``;
      must divide T and be a multiple of ``unroll`` (``None``: the largest
      divisor of T up to ``sqrt(T)``).
    kernel_init, recurrent_kernel_init, bias_init: initializers of one gate's
      ``[I, H]``, ``[H, H]``, ``[H]`` block (lecun normal, orthogonal, zeros),
      called once per gate as in Flax; half-precision ``param_dtype`` is
      initialized in float32, then rounded.
    use_bias: whether the layer has biases (PyTorch ``bias``, Keras ``use_bias``).
    gate_fn, activation_fn: the gate and candidate activations (sigmoid,
      tanh); others run only with ``implementation="scan"`` (``"auto"`` picks it).

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
  recurrent_kernel_init: Any = nn.initializers.orthogonal()
  bias_init: Any = nn.initializers.zeros_init()
  recurrent_dropout: float = 0.0
  remat: str = "none"
  remat_segment: int | None = None
  use_bias: bool = True
  gate_fn: Any = jax.nn.sigmoid
  activation_fn: Any = jnp.tanh

  def __post_init__(self):
    check_options("GRU", features=self.features, **{name: getattr(self, name) for name in OPTIONS})
    super().__post_init__()

  @property
  def num_directions(self) -> int:
    """D: 2 when bidirectional, else 1."""
    return 2 if self.bidirectional else 1

  @nn.compact
  def __call__(
      self, inputs: Array, *, seq_lengths: Array | None = None, initial_carry: Array | None = None, deterministic: bool = True
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
    x, h0, seq_lengths, _ = batch_in = sequences.prepare_sequences(
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
    params = [
        [
            _DirectionParams(
                self.features,
                self.param_dtype,
                self.kernel_init,
                self.recurrent_kernel_init,
                self.bias_init,
                self.use_bias,
                name=param_name(layer, direction),
            )(x.shape[-1] if layer == 0 else self.num_directions * self.features)
            for direction in range(self.num_directions)
        ]
        for layer in range(self.num_layers)
    ]
    masks = None
    if self.recurrent_dropout and not deterministic:
      keep = 1.0 - self.recurrent_dropout

      def mask():  # one [B, H] mask per layer and direction, the same at every step
        kept = jax.random.bernoulli(self.make_rng("recurrent_dropout"), keep, (batch, self.features))
        return kept.astype(self.param_dtype) / keep

      masks = [[mask() for _ in range(self.num_directions)] for _ in range(self.num_layers)]
    dropout = nn.Dropout(rate=self.dropout) if self.dropout else None
    outputs, finals = sequences.gru_stack(
        params,
        x,
        h0,
        seq_lengths=seq_lengths,
        recurrent_masks=masks,
        between_layers=None if dropout is None else (lambda _, y: dropout(y, deterministic=deterministic)),
        **stack_options(self),
    )
    return sequences.restore_layout(batch_in, outputs, finals, self.time_major)  # finals: [L*D, B, H]
