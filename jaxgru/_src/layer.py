"""The multi-layer, optionally bidirectional GRU layer (PyTorch ``nn.GRU`` semantics)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgru._src import cell as cell_lib
from jaxgru._src import options
from jaxgru._src import sequences
from jaxgru._src import validation
from jaxgru._src.sequences import param_name

Array = jax.Array


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

  >>> gru = GRU(features=8, num_layers=2, bidirectional=True)
  >>> x = jnp.ones((4, 10, 3))  # [B, T, I]
  >>> variables = gru.init(jax.random.key(0), x)
  >>> y, h_n = gru.apply(variables, x, seq_lengths=jnp.array([10, 7, 1, 0]))
  >>> y.shape, h_n.shape  # [B, T, D*H], [L*D, B, H]
  ((4, 10, 16), (4, 4, 8))

  Called as ``gru.apply(variables, inputs, *, seq_lengths=None,
  initial_carry=None, resets=None, reset_carry=None, deterministic=True,
  rngs=None) -> (outputs, h_n)``
  (see :meth:`__call__`). Each layer and direction runs the GRU equations of
  :mod:`jaxgru.gates` (PyTorch's, with ``variant="reset_after"``); layer
  ``l > 0`` reads the concatenated outputs of layer ``l - 1`` (dropout
  between layers when training).

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
      chosen by :func:`jaxgru.resolve_implementation` when the layer
      runs): ``"auto"`` (default), ``"scan"``, ``"custom_vjp"``,
      ``"custom_vjp_in_loop"`` or ``"pallas"`` (GPU only, not yet measured on
      hardware); all give the same numbers. ``recurrent_dropout``, ``remat``
      and other activations need ``"scan"`` (``"auto"`` picks it; another
      explicit choice raises at construction).
    time_major: inputs and outputs are ``[T, B, ...]`` instead of ``[B, T, ...]``.
    dtype: compute dtype (``None``: promote inputs and parameters,
      the one dtype rule of the library).
    param_dtype: parameter dtype; also the carry dtype, and the dtype integer
      or boolean inputs are promoted to.
    recurrent_dropout: rate of dropout on the hidden state where it enters the
      recurrent products (Gal & Ghahramani 2016; Keras ``recurrent_dropout``):
      one ``[B, H]`` mask per layer and direction, the same at every step of a
      sequence, drawn from the ``'dropout'`` RNG stream (a ``'recurrent_dropout'``
      stream, when given, is used instead); off when ``deterministic``.
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
    options.check_layer_options(
      "GRU", features=self.features, **{name: getattr(self, name) for name in options.GRU_OPTIONS}
    )
    super().__post_init__()

  @property
  def num_directions(self) -> int:
    """D: 2 when bidirectional, else 1."""
    return 2 if self.bidirectional else 1

  @nn.compact
  def __call__(
    self,
    inputs: Array,
    *args,
    seq_lengths: Array | None = None,
    initial_carry: Array | None = None,
    resets: Array | None = None,
    reset_carry: Array | None = None,
    deterministic: bool = True,
  ) -> tuple[Array, Array]:
    """Runs the GRU over a batch of sequences.

    Args:
      inputs: ``[B, T, I]`` (``[T, B, I]`` when ``time_major``); a single
        unbatched sequence ``[T, I]`` is accepted too. Integer and boolean
        inputs are promoted to ``param_dtype``.
      *args: none; the options below are keyword-only (a positional one raises
        a ``TypeError`` that says so).
      seq_lengths: optional ``[B]`` integer lengths in ``[0, T]``. Outputs at
        padded steps are zero, padded steps leave the state unchanged, and the
        backward direction starts at each sequence's last valid step.
        Concrete out-of-range lengths raise; under ``jit`` they are clipped to
        ``[0, T]``.
      initial_carry: optional ``[L*D, B, H]`` initial states ordered as
        PyTorch's ``h_0`` (index ``layer * D + direction``); zeros by default.
      resets: optional booleans ``[B, T]`` (``[T, B]`` when ``time_major``,
        ``[T]`` unbatched), true where an episode starts: the state entering
        step ``t`` of sequence ``b`` is ``reset_carry`` (by default the initial
        state) instead of the previous step's state, in every layer and
        direction, and no gradient flows through a reset into earlier steps.
        The reverse direction runs each episode backward from its own last
        step. Resets at padded steps are ignored. Every implementation takes them.
      reset_carry: optional ``[L*D, B, H]`` states a reset restores, ordered as
        ``initial_carry``; the initial state by default (zeros when no
        ``initial_carry`` is given). Recurrent policies that carry a state
        across rollouts and restart episodes from zeros pass
        ``initial_carry=h`` and ``reset_carry=jnp.zeros_like(h)``.
      deterministic: disables dropout between layers and recurrent dropout
        when true.

    Returns:
      ``(outputs, final_carry)``: ``outputs [B, T, D*H]`` (``[T, B, D*H]`` when
      ``time_major``) and ``final_carry [L*D, B, H]``, the state after each
      sequence's last valid step, ordered as PyTorch's ``h_n``.
    """
    validation.check_keyword_only(
      "GRU", args, ("seq_lengths", "initial_carry", "resets", "reset_carry", "deterministic")
    )
    existing = self.variables.get("params", {}).get(param_name(0, 0), {}).get("input_kernel")

    def obtain_params(input_features):
      return [
        [
          _DirectionParams(
            self.features,
            self.param_dtype,
            self.kernel_init,
            self.recurrent_kernel_init,
            self.bias_init,
            self.use_bias,
            name=param_name(layer, direction),
          )(input_features if layer == 0 else self.num_directions * self.features)
          for direction in range(self.num_directions)
        ]
        for layer in range(self.num_layers)
      ]

    training = not deterministic
    keys = sequences.LayerKeys(
      dropout=self.make_rng("dropout") if training and self.dropout else None,
      recurrent_dropout=self.make_rng(_recurrent_dropout_stream(self)) if training and self.recurrent_dropout else None,
    )
    return sequences.gru_layer(
      obtain_params,
      inputs,
      features=self.features,
      options={n: getattr(self, n) for n in options.GRU_OPTIONS},
      keys=keys,
      expected_input_features=None if existing is None else existing.shape[0],
      seq_lengths=seq_lengths,
      initial_carry=initial_carry,
      resets=resets,
      reset_carry=reset_carry,
    )


def _recurrent_dropout_stream(module: nn.Module) -> str:
  """``'dropout'``, the one stream of both APIs; a ``'recurrent_dropout'`` stream (the name before) wins when given."""
  return "recurrent_dropout" if module.has_rng("recurrent_dropout") else "dropout"
