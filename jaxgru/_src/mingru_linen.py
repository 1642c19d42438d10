"""The linen module of minGRU, :class:`jaxgru.MinGRU`: parameters and keys over :func:`jaxgru._src.mingru.mingru_layer`.

The maths (and the layer body shared with :class:`jaxgru.nnx.MinGRU`) are in
:mod:`jaxgru._src.mingru`, which imports no Flax API.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgru._src import params as params_lib
from jaxgru._src import sequences
from jaxgru._src import validation
from jaxgru._src.mingru import OPTION_NAMES
from jaxgru._src.mingru import check_options
from jaxgru._src.mingru import mingru_layer

Array = jax.Array


class _LayerParams(nn.Module):
  """Holds ``kernel [I, 2H]`` and ``bias [2H]`` of one minGRU layer."""

  features: int
  param_dtype: Any
  kernel_init: Any
  bias_init: Any

  @nn.compact
  def __call__(self, input_features: int) -> dict[str, Array]:
    return {
      "kernel": self.param(
        "kernel", params_lib.init_param, self.kernel_init, (input_features, 2 * self.features), self.param_dtype
      ),
      "bias": self.param("bias", params_lib.init_param, self.bias_init, (2 * self.features,), self.param_dtype),
    }


class MinGRU(nn.Module):
  r"""Multi-layer minGRU (Feng et al. 2024) over sequences, with the interface of :class:`jaxgru.GRU`.

  >>> rnn = MinGRU(features=8, num_layers=2)
  >>> x = jnp.ones((4, 10, 3))  # [B, T, I]
  >>> variables = rnn.init(jax.random.key(0), x)
  >>> y, h_n = rnn.apply(variables, x, seq_lengths=jnp.array([10, 7, 1, 0]))
  >>> y.shape, h_n.shape  # [B, T, H], [L, B, H]
  ((4, 10, 8), (2, 4, 8))

  Each layer runs the recurrence of :mod:`jaxgru.mingru`; layer ``l > 0``
  reads the outputs of layer ``l - 1``. Parameters live under
  ``params["layer_{l}"]`` as ``kernel [I_l, 2H]`` and ``bias [2H]``.

  Attributes:
    features: H.
    num_layers: L, stacked layers.
    mode: ``"parallel"`` (default, ``associative_scan``), ``"log"`` (the
      paper's log-space scan, needs ``candidate="g"``) or ``"sequential"``
      (``lax.scan``); all give the same numbers.
    candidate: ``"linear"`` (default, :math:`\tilde h = W_h x + b_h`) or
      ``"g"`` (:math:`\tilde h = g(W_h x + b_h) > 0`, the paper's choice for
      the log-space form).
    dropout: dropout rate on the outputs of every layer but the last
      (``'dropout'`` RNG stream; off when ``deterministic``).
    time_major: inputs and outputs are ``[T, B, ...]`` instead of ``[B, T, ...]``.
    dtype: compute dtype of the input projections (``None``: promote); the
      scan runs in the carry dtype.
    param_dtype: parameter dtype; also the carry dtype (half precision is
      initialized in float32, then rounded).
  """

  features: int
  num_layers: int = 1
  mode: str = "parallel"
  candidate: str = "linear"
  dropout: float = 0.0
  time_major: bool = False
  dtype: Any = None
  param_dtype: Any = jnp.float32
  kernel_init: Any = nn.initializers.lecun_normal()
  bias_init: Any = nn.initializers.zeros_init()

  def __post_init__(self):
    check_options("MinGRU", features=self.features, **{name: getattr(self, name) for name in OPTION_NAMES})
    super().__post_init__()

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
    """Runs the minGRU over a batch of sequences (options after ``inputs`` are keyword-only).

    Args:
      inputs: ``[B, T, I]`` (``[T, B, I]`` when ``time_major``); a single
        unbatched sequence ``[T, I]`` is accepted too.
      seq_lengths: optional ``[B]`` integer lengths in ``[0, T]``: outputs at
        padded steps are zero and padded steps leave the state unchanged.
      initial_carry: optional ``[L, B, H]`` initial states (zeros by default);
        pass the previous call's ``final_carry`` to stream a long sequence in
        chunks.
      resets, reset_carry: optional episode resets ``[B, T]`` (``[T, B]``
        when ``time_major``) and the ``[L, B, H]`` states they restore (the
        initial state by default), as :meth:`jaxgru.GRU.__call__`.
      deterministic: disables dropout between layers when true.

    Returns:
      ``(outputs, final_carry)``: ``outputs [B, T, H]`` (``[T, B, H]`` when
      ``time_major``) and ``final_carry [L, B, H]``, the state after each
      sequence's last valid step.
    """
    validation.check_keyword_only(
      "MinGRU", args, ("seq_lengths", "initial_carry", "resets", "reset_carry", "deterministic")
    )
    existing = self.variables.get("params", {}).get("layer_0", {}).get("kernel")

    def obtain_params(input_features):
      return [
        [
          _LayerParams(self.features, self.param_dtype, self.kernel_init, self.bias_init, name=f"layer_{layer}")(
            input_features if layer == 0 else self.features
          )
        ]
        for layer in range(self.num_layers)
      ]

    keys = sequences.LayerKeys(dropout=self.make_rng("dropout") if self.dropout and not deterministic else None)
    return mingru_layer(
      obtain_params,
      inputs,
      features=self.features,
      options={n: getattr(self, n) for n in OPTION_NAMES},
      keys=keys,
      expected_input_features=None if existing is None else existing.shape[0],
      seq_lengths=seq_lengths,
      initial_carry=initial_carry,
      resets=resets,
      reset_carry=reset_carry,
    )
