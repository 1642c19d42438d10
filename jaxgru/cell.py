"""The flax.linen GRU cell: declares parameters, calls :mod:`jaxgru.gates`."""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgru import gates
from jaxgru import validation

Array = jax.Array
Initializer = Callable[..., Array]


def stacked_orthogonal(num_blocks: int = 3) -> Initializer:
  """Initializer of a ``[H, k*H]`` kernel made of ``k`` orthogonal ``[H, H]`` blocks.

  This is what ``flax.linen.GRUCell`` does with one orthogonal matrix per gate.
  """
  orthogonal = nn.initializers.orthogonal()

  def init(key, shape, dtype=jnp.float32):
    rows, cols = shape
    if cols % num_blocks:
      raise ValueError(f"kernel shape {shape} is not {num_blocks} stacked blocks")
    keys = jax.random.split(key, num_blocks)
    blocks = [orthogonal(k, (rows, cols // num_blocks), dtype) for k in keys]
    return jnp.concatenate(blocks, axis=-1)

  return init


def declare_params(
    module: nn.Module,
    input_features: int,
    features: int,
    *,
    kernel_init: Initializer,
    recurrent_kernel_init: Initializer,
    bias_init: Initializer,
    param_dtype,
) -> dict[str, Array]:
  """Declares (or fetches) the four GRU parameters on ``module``.

  Args:
    module: the module inside whose ``compact`` method this is called.
    input_features: I.
    features: H.
    kernel_init, recurrent_kernel_init, bias_init: initializers.
    param_dtype: dtype of the parameters.

  Returns:
    ``{"input_kernel": [I, 3H], "recurrent_kernel": [H, 3H],
    "input_bias": [3H], "recurrent_bias": [3H]}``.

  Raises:
    ValueError: the module already has parameters made for another input size.
  """
  if module.has_variable("params", "input_kernel"):
    have = module.get_variable("params", "input_kernel").shape
    if have[0] != input_features:
      raise ValueError(
          f"{type(module).__name__} {module.name!r} got inputs with {input_features} "
          f"features, but its parameters expect {have[0]} (input_kernel shape {have})"
      )
  shapes = {
      "input_kernel": ((input_features, 3 * features), kernel_init),
      "recurrent_kernel": ((features, 3 * features), recurrent_kernel_init),
      "input_bias": ((3 * features,), bias_init),
      "recurrent_bias": ((3 * features,), bias_init),
  }
  return {
      name: module.param(name, init, shape, param_dtype)
      for name, (shape, init) in shapes.items()
  }


class GRUCell(nn.RNNCellBase):
  r"""GRU cell, a drop-in replacement for ``flax.linen.GRUCell``.

  .. math::

     r &= \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}) \\
     z &= \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}) \\
     n &= \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})) \\
     h' &= (1 - z) \odot n + z \odot h

  With ``variant="reset_before"`` the candidate is
  :math:`n = \tanh(W_{in} x + b_{in} + W_{hn}(r \odot h) + b_{hn})`.
  Unlike ``flax.linen.GRUCell`` it keeps both bias vectors, as PyTorch does.

  Parameters: ``input_kernel [I, 3H]``, ``recurrent_kernel [H, 3H]``,
  ``input_bias [3H]``, ``recurrent_bias [3H]``, gates in order ``r, z, n``.

  Attributes:
    features: H, the number of hidden features.
    variant: ``"reset_after"`` (default) or ``"reset_before"``.
    dtype: compute dtype (``None``: promote inputs and parameters). The carry
      keeps its own dtype.
    param_dtype: parameter dtype.
    kernel_init: initializer of ``input_kernel`` (lecun normal).
    recurrent_kernel_init: initializer of ``recurrent_kernel`` (one orthogonal
      block per gate).
    bias_init: initializer of both biases (zeros).
    carry_init: initializer of the carry (zeros).

  Example:

  >>> import flax.linen as nn
  >>> x = jnp.ones((4, 10, 3))  # [B, T, I]
  >>> rnn = nn.RNN(GRUCell(features=8))
  >>> variables = rnn.init(jax.random.key(0), x)
  >>> rnn.apply(variables, x).shape  # [B, T, H]
  (4, 10, 8)
  """

  features: int
  variant: str = "reset_after"
  dtype: Any = None
  param_dtype: Any = jnp.float32
  kernel_init: Initializer = nn.initializers.lecun_normal()
  recurrent_kernel_init: Initializer = stacked_orthogonal(3)
  bias_init: Initializer = nn.initializers.zeros_init()
  carry_init: Initializer = nn.initializers.zeros_init()

  def __post_init__(self):
    gates.as_variant(self.variant)
    validation.check_floating("GRUCell dtype", self.dtype)
    validation.check_floating("GRUCell param_dtype", self.param_dtype)
    super().__post_init__()

  @nn.compact
  def __call__(self, carry: Array, inputs: Array) -> tuple[Array, Array]:
    """One step.

    Args:
      carry: ``[..., H]`` hidden state.
      inputs: ``[..., I]`` input; leading axes are batch axes, as in ``carry``.

    Returns:
      ``(new_carry, outputs)``, both ``[..., H]`` (the same array).
    """
    if carry.shape[-1:] != (self.features,) or carry.shape[:-1] != inputs.shape[:-1]:
      raise ValueError(
          f"GRUCell carry has shape {carry.shape}; expected {inputs.shape[:-1] + (self.features,)} "
          f"for inputs of shape {inputs.shape} and features={self.features}"
      )
    params = declare_params(
        self,
        inputs.shape[-1],
        self.features,
        kernel_init=self.kernel_init,
        recurrent_kernel_init=self.recurrent_kernel_init,
        bias_init=self.bias_init,
        param_dtype=self.param_dtype,
    )
    h = gates.gru_step(params, carry, inputs, self.variant, self.dtype)
    return h, h

  @nn.nowrap
  def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> Array:
    """Initial carry ``[..., H]`` for inputs of shape ``[..., I]``."""
    return self.carry_init(rng, tuple(input_shape[:-1]) + (self.features,), self.param_dtype)

  @property
  def num_feature_axes(self) -> int:
    return 1
