"""The ``flax.nnx`` module of minGRU, :class:`jaxgru.nnx.MinGRU`: parameters and keys over minGRU's maths.

The twin of ``mingru_linen.py``: both call the same layer body (``sequences.py``)
with minGRU's layer (``mingru.py``), so they compute the same numbers from the
same parameters.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgru._src import mingru
from jaxgru._src import params as params_lib
from jaxgru._src import sequences
from jaxgru._src import validation
from jaxgru._src.nnx import _check_rngs

Array = jax.Array
Initializer = Callable[..., Array]


class _MinGRULayer(nnx.Module):
  """``kernel [I, 2H]`` and ``bias [2H]`` of one minGRU layer (see :mod:`jaxgru.mingru`)."""

  def __init__(self, in_features, hidden_features, *, kernel_init, bias_init, param_dtype, rngs):
    init = params_lib.init_param
    self.kernel = nnx.Param(init(rngs.params(), kernel_init, (in_features, 2 * hidden_features), param_dtype))
    self.bias = nnx.Param(init(rngs.params(), bias_init, (2 * hidden_features,), param_dtype))


class MinGRU(nnx.Module):
  r"""Multi-layer minGRU (Feng et al. 2024) for ``flax.nnx``: :class:`jaxgru.MinGRU` as an ``nnx.Module``.

  The same computation as :class:`jaxgru.MinGRU` through
  :func:`jaxgru.mingru.mingru_scan`; parameters ``layer_{l}.kernel [I_l, 2H]``
  and ``layer_{l}.bias [2H]``. Dropout between layers is on after
  ``.train()`` and off after ``.eval()``.

  The other arguments, ``num_layers``, ``mode``, ``candidate``, ``dropout``, ``time_major``,
  ``dtype``, ``param_dtype``, ``kernel_init`` and ``bias_init``, are the attributes of
  :class:`jaxgru.MinGRU`.

  Args:
    in_features: I.
    hidden_features: H.
    rngs: ``nnx.Rngs`` (``params``; ``dropout`` when dropping).

  Example:

  >>> from flax import nnx
  >>> rnn = MinGRU(3, 8, num_layers=2, rngs=nnx.Rngs(0))
  >>> y, h_n = rnn(jnp.ones((4, 10, 3)))
  >>> y.shape, h_n.shape  # [B, T, H], [L, B, H]
  ((4, 10, 8), (2, 4, 8))
  """

  def __init__(
    self,
    in_features: int,
    hidden_features: int,
    *,
    num_layers: int = 1,
    mode: str = "parallel",
    candidate: str = "linear",
    dropout: float = 0.0,
    time_major: bool = False,
    dtype=None,
    param_dtype=jnp.float32,
    kernel_init: Initializer = nnx.initializers.lecun_normal(),
    bias_init: Initializer = nnx.initializers.zeros_init(),
    rngs: nnx.Rngs,
  ):
    validation.check_positive_int("MinGRU in_features", in_features)
    _check_rngs("MinGRU", rngs)
    options = dict(
      num_layers=num_layers,
      mode=mode,
      candidate=candidate,
      dropout=dropout,
      time_major=time_major,
      dtype=dtype,
      param_dtype=param_dtype,
    )
    mingru.check_options("MinGRU", features=hidden_features, **options)
    self.in_features, self.hidden_features = in_features, hidden_features
    for name, value in options.items():
      setattr(self, name, value)
    for layer in range(num_layers):
      inputs = in_features if layer == 0 else hidden_features
      setattr(
        self,
        f"layer_{layer}",
        _MinGRULayer(
          inputs, hidden_features, kernel_init=kernel_init, bias_init=bias_init, param_dtype=param_dtype, rngs=rngs
        ),
      )
    self.deterministic = False  # set by .train() and .eval()
    self.dropout_rngs = rngs["dropout"].fork() if dropout else None

  def __call__(
    self,
    inputs: Array,
    *args,
    seq_lengths: Array | None = None,
    initial_carry: Array | None = None,
    resets: Array | None = None,
    reset_carry: Array | None = None,
  ) -> tuple[Array, Array]:
    """Runs the minGRU: ``inputs [B, T, I]`` -> ``(outputs [B, T, H], final_carry [L, B, H])`` (as :class:`jaxgru.MinGRU`)."""
    validation.check_keyword_only("MinGRU", args, ("seq_lengths", "initial_carry", "resets", "reset_carry"))
    layers = [getattr(self, f"layer_{l}") for l in range(self.num_layers)]
    training = self.dropout_rngs is not None and not self.deterministic
    return mingru.mingru_layer(
      lambda _: [[{"kernel": layer.kernel[...], "bias": layer.bias[...]}] for layer in layers],
      inputs,
      features=self.hidden_features,
      options={name: getattr(self, name) for name in mingru.OPTION_NAMES},
      keys=sequences.LayerKeys(dropout=self.dropout_rngs() if training else None),
      expected_input_features=self.in_features,
      seq_lengths=seq_lengths,
      initial_carry=initial_carry,
      resets=resets,
      reset_carry=reset_carry,
    )


__all__ = ("MinGRU",)
