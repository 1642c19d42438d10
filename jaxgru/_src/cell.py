"""The flax.linen GRU cell: declares parameters, calls :mod:`jaxgru.gates`."""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgru._src import dtypes
from jaxgru._src import gates
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
    validation.check_input_width(type(module).__name__, input_features, module.get_variable("params", "input_kernel").shape[0])
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


def check_cell_options(owner: str, sizes: dict[str, int], *, variant, dtype, param_dtype, use_bias, gate_fn, activation_fn):
  """The option checks of both GRU cells (:class:`GRUCell`, :class:`jaxgru.nnx.GRUCell`); returns the :class:`Variant`.

  Args:
    owner: the class name for the messages.
    sizes: ``{"features": H}`` or ``{"in_features": I, "hidden_features": H}``.
    variant, dtype, param_dtype, use_bias, gate_fn, activation_fn: the cell's options.

  Raises:
    ValueError, TypeError: naming the option, what it was and what was expected.
  """
  for name, value in sizes.items():
    validation.check_positive_int(f"{owner} {name}", value)
  validation.check_floating(f"{owner} dtype", dtype, allow_complex=True)
  validation.check_floating(f"{owner} param_dtype", param_dtype, allow_complex=True)
  validation.check_bool(f"{owner} use_bias", use_bias)
  validation.check_callable(f"{owner} gate_fn", gate_fn)
  validation.check_callable(f"{owner} activation_fn", activation_fn)
  return gates.as_variant(variant)


def _broadcasts(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
  try:
    return jnp.broadcast_shapes(shape, target) == target
  except ValueError:
    return False


def cell_step(owner: str, cell, params, carry, inputs) -> Array:
  """One step of a GRU cell (linen or nnx): :func:`jaxgru.gates.gru_step` with Flax's input rules.

  As Flax's cells: integer and boolean inputs are promoted to ``param_dtype``;
  a carry whose leading axes broadcast to the inputs' (a ``[H]`` carry with
  ``[B, I]`` inputs) is broadcast; complex inputs or parameters make the
  carry and the computation complex (a real carry would silently drop the
  imaginary part).

  Args:
    owner: the class name for the messages.
    cell: the cell, for its options ``features`` (H), ``variant``, ``dtype``,
      ``param_dtype``, ``gate_fn`` and ``activation_fn``.
    params: the four parameter arrays (:func:`jaxgru._src.params.with_biases`).
    carry: ``[..., H]`` hidden state.
    inputs: ``[..., I]`` input.

  Returns:
    ``[..., H]`` the new carry (complex when anything was complex).

  Raises:
    ValueError: a carry or input that does not fit the parameters (naming the cell).
  """
  inputs = dtypes.promote_inputs(inputs, cell.param_dtype)
  carry = jnp.asarray(carry)
  hidden = params["recurrent_kernel"].shape[0]
  validation.check_input_width(owner, inputs.shape[-1], params["input_kernel"].shape[0])
  lead = inputs.shape[:-1]
  if carry.shape[-1:] != (hidden,) or not _broadcasts(carry.shape[:-1], lead):
    raise ValueError(
        f"{owner} carry has shape {carry.shape}; expected {lead + (hidden,)} (or one that broadcasts "
        f"to it, such as ({hidden},)) for inputs of shape {inputs.shape} and features={hidden}"
    )
  carry = jnp.broadcast_to(carry, lead + (hidden,))
  dtype = cell.dtype
  if any(jnp.issubdtype(a.dtype, jnp.complexfloating) for a in (carry, inputs, params["input_kernel"])) or (
      dtype is not None and jnp.issubdtype(dtype, jnp.complexfloating)
  ):
    dtype = dtypes.compute_dtype(None, carry, inputs, cell.param_dtype, dtype)
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
    check_cell_options(
        "GRUCell", {"features": self.features}, variant=self.variant, dtype=self.dtype, param_dtype=self.param_dtype,
        use_bias=self.use_bias, gate_fn=self.gate_fn, activation_fn=self.activation_fn,
    )  # fmt: skip
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
    h = cell_step("GRUCell", self, params, carry, inputs)
    return h, h

  @nn.nowrap
  def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> Array:
    """Initial carry ``[..., H]`` for inputs of shape ``[..., I]``."""
    return self.carry_init(rng, tuple(input_shape[:-1]) + (self.features,), self.param_dtype)

  @property
  def num_feature_axes(self) -> int:
    return 1
