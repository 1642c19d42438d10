"""The flax.linen GRU cell: declares parameters, calls :mod:`jaxgru.gates`."""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgru import gates
from jaxgru import params as params_lib
from jaxgru import validation

Array = jax.Array
Initializer = Callable[..., Array]


def declare_params(module: nn.Module, input_features: int) -> dict[str, Array]:
  """Declares (or fetches) the GRU parameters on ``module``, initialized per gate (:func:`jaxgru.params.init_gates`).

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
    have = module.get_variable("params", "input_kernel").shape
    if have[0] != input_features:
      raise ValueError(
          f"{type(module).__name__} {module.name!r} got inputs with {input_features} "
          f"features, but its parameters expect {have[0]} (input_kernel shape {have})"
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


def check_carry(name: str, carry: Array, inputs: Array, features: int) -> None:
  """Raises ``ValueError`` unless ``carry`` is ``[..., H]`` with the leading axes of ``inputs [..., I]``."""
  if carry.shape[-1:] != (features,) or carry.shape[:-1] != inputs.shape[:-1]:
    raise ValueError(
        f"{name} carry has shape {carry.shape}; expected {inputs.shape[:-1] + (features,)} "
        f"for inputs of shape {inputs.shape} and features={features}"
    )


def cell_step(cell, params, carry: Array, inputs: Array) -> Array:
  """One step of a GRU cell (linen or nnx): :func:`jaxgru.gates.gru_step` with Flax's complex rule.

  Complex inputs or parameters make the carry and the computation complex, as
  in Flax's cells (which compute in the promoted dtype); a real carry would
  silently drop the imaginary part.

  Args:
    cell: the cell, for its options ``variant``, ``dtype``, ``param_dtype``,
      ``gate_fn`` and ``activation_fn``.
    params: the four parameter arrays (:func:`jaxgru.params.with_biases`).
    carry: ``[..., H]`` hidden state.
    inputs: ``[..., I]`` input.

  Returns:
    ``[..., H]`` the new carry (complex when anything was complex).
  """
  dtype = cell.dtype
  kinds = [jnp.dtype(d) for d in (carry.dtype, inputs.dtype, cell.param_dtype, dtype) if d is not None]
  if any(jnp.issubdtype(d, jnp.complexfloating) for d in kinds):
    dtype = functools.reduce(np.promote_types, kinds)  # NumPy's rule: exempt from strict promotion
    carry = carry.astype(dtype)
  return gates.gru_step(params, carry, inputs, cell.variant, dtype, gate_fn=cell.gate_fn, activation_fn=cell.activation_fn)


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
    gates.as_variant(self.variant)
    validation.check_positive_int("GRUCell features", self.features)
    validation.check_floating("GRUCell dtype", self.dtype, allow_complex=True)
    validation.check_floating("GRUCell param_dtype", self.param_dtype, allow_complex=True)
    validation.check_bool("GRUCell use_bias", self.use_bias)
    validation.check_callable("GRUCell gate_fn", self.gate_fn)
    validation.check_callable("GRUCell activation_fn", self.activation_fn)
    super().__post_init__()

  @nn.compact
  def __call__(self, carry: Array, inputs: Array) -> tuple[Array, Array]:
    """One step.

    Args:
      carry: ``[..., H]`` hidden state.
      inputs: ``[..., I]`` input; leading axes are batch axes, as in ``carry``.

    Returns:
      ``(new_carry, outputs)``, both ``[..., H]`` (the same array); complex
      when the inputs or parameters are.
    """
    check_carry("GRUCell", carry, inputs, self.features)
    params = declare_params(self, inputs.shape[-1])
    h = cell_step(self, params, carry, inputs)
    return h, h

  @nn.nowrap
  def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> Array:
    """Initial carry ``[..., H]`` for inputs of shape ``[..., I]``."""
    return self.carry_init(rng, tuple(input_shape[:-1]) + (self.features,), self.param_dtype)

  @property
  def num_feature_axes(self) -> int:
    return 1
