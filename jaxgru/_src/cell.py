"""The flax.linen GRU cell: declares parameters, calls :mod:`jaxgru.gates`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgru._src import cell_body
from jaxgru._src import options
from jaxgru._src import params as params_lib
from jaxgru._src import validation

Array = jax.Array
Initializer = Callable[..., Array]


def declare_params(module: nn.Module, input_features: int) -> dict[str, Array]:
  """Declares (or fetches) the GRU parameters on ``module``, initialized per gate (:func:`jaxgru._src.params.init_gates`).

  Args:
    module: the module inside whose ``compact`` method this is called; its
      attributes ``features`` (H), ``kernel_init``, ``recurrent_kernel_init``,
      ``bias_init`` (initializers of one gate's ``[I, H]``, ``[H, H]`` and
      ``[H]`` block), ``param_dtype`` and ``use_bias`` say what to declare.
    input_features: I.

  Returns:
    ``{"input_kernel": [I, 3H], "recurrent_kernel": [H, 3H],
    "input_bias": [3H], "recurrent_bias": [3H]}`` (zero biases when
    ``use_bias`` is false).

  Raises:
    ValueError: the module already has parameters made for another input size.
  """
  if module.has_variable("params", "input_kernel"):
    validation.check_input_width(
      type(module).__name__, input_features, module.get_variable("params", "input_kernel").shape[0]
    )
  specs = params_lib.param_specs(
    input_features,
    module.features,
    kernel_init=module.kernel_init,
    recurrent_kernel_init=module.recurrent_kernel_init,
    bias_init=module.bias_init,
    use_bias=module.use_bias,
  )
  declared = {name: module.param(name, params_lib.init_gates, spec, module.param_dtype) for name, spec in specs.items()}
  return params_lib.with_biases(declared)


class GRUCell(nn.RNNCellBase):
  r"""GRU cell, a drop-in replacement for ``flax.linen.GRUCell``.

  .. math::

     r &= \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}) \\
     z &= \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}) \\
     n &= \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})) \\
     h' &= (1 - z) \odot n + z \odot h

  With ``variant="reset_before"`` the candidate is
  :math:`n = \tanh(W_{in} x + b_{in} + W_{hn}(r \odot h) + b_{hn})`.
  Unlike ``flax.linen.GRUCell`` it keeps both bias vectors, as PyTorch does,
  and stacks the gates in one kernel (:func:`jaxgru.interop.from_flax_cell`
  converts a Flax cell's parameters). Complex inputs or parameters give a
  complex carry, as in Flax.

  Parameters: ``input_kernel [I, 3H]``, ``recurrent_kernel [H, 3H]``,
  ``input_bias [3H]``, ``recurrent_bias [3H]``, gates in order ``r, z, n``
  (no biases with ``use_bias=False``).

  Attributes:
    features: H, the number of hidden features.
    variant: ``"reset_after"`` (default) or ``"reset_before"``.
    dtype: compute dtype (``None``: promote inputs and parameters). The carry
      keeps its own dtype.
    param_dtype: parameter dtype (half precision is initialized in float32,
      then rounded; complex is allowed).
    kernel_init: initializer of each gate's ``[I, H]`` block of
      ``input_kernel`` (lecun normal), called once per gate as in Flax.
    recurrent_kernel_init: initializer of each gate's ``[H, H]`` block of
      ``recurrent_kernel`` (orthogonal).
    bias_init: initializer of each gate's ``[H]`` block of both biases (zeros).
    carry_init: initializer of the carry (zeros).
    gate_fn: activation of the gates :math:`\sigma` (sigmoid).
    activation_fn: activation of the candidate (tanh).
    use_bias: whether the cell has biases.

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
  recurrent_kernel_init: Initializer = nn.initializers.orthogonal()
  bias_init: Initializer = nn.initializers.zeros_init()
  carry_init: Initializer = nn.initializers.zeros_init()
  gate_fn: Callable[..., Array] = jax.nn.sigmoid
  activation_fn: Callable[..., Array] = jnp.tanh
  use_bias: bool = True

  def __post_init__(self):
    options.check_cell_options(
      "GRUCell",
      {"features": self.features},
      variant=self.variant,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      use_bias=self.use_bias,
      gate_fn=self.gate_fn,
      activation_fn=self.activation_fn,
    )
    super().__post_init__()

  @nn.compact
  def __call__(self, carry: Array, inputs: Array) -> tuple[Array, Array]:
    """One step.

    Args:
      carry: ``[..., H]`` hidden state (a carry that broadcasts to the
        inputs' leading axes, such as ``[H]``, is broadcast, as in Flax).
      inputs: ``[..., I]`` input; leading axes are batch axes. Integer and
        boolean inputs are promoted to ``param_dtype``, as in Flax.

    Returns:
      ``(new_carry, outputs)``, both ``[..., H]`` (the same array); complex
      when the inputs or parameters are.
    """
    params = declare_params(self, jnp.shape(inputs)[-1])
    h = cell_body.cell_step("GRUCell", self, params, carry, inputs)
    return h, h

  @nn.nowrap
  def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> Array:
    """Initial carry ``[..., H]`` for inputs of shape ``[..., I]``."""
    return self.carry_init(rng, tuple(input_shape[:-1]) + (self.features,), self.param_dtype)

  @property
  def num_feature_axes(self) -> int:
    return 1
