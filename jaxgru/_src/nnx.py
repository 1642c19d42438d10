r"""The ``flax.nnx`` modules of the GRU: :class:`GRUCell` and :class:`GRU` (minGRU's in ``mingru_nnx.py``).

Each holds its parameters as ``nnx.Param`` and calls the same pure functions
as the ``flax.linen`` modules (:func:`jaxgru.gates.gru_step`,
:func:`jaxgru.gru_stack`, :func:`jaxgru.mingru.mingru_scan`), so the
two APIs compute the same numbers from the same parameters;
:func:`jaxgru.interop.to_nnx` and :func:`jaxgru.interop.to_linen` move
parameters between them. Shapes follow the legend in :mod:`jaxgru.gates`.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgru._src import cell_body
from jaxgru._src import gates
from jaxgru._src import options as options_lib
from jaxgru._src import params as params_lib
from jaxgru._src import sequences
from jaxgru._src import validation
from jaxgru._src.sequences import param_name

Array = jax.Array
Initializer = Callable[..., Array]
_NO_METADATA = MappingProxyType({})


def _check_rngs(owner: str, rngs) -> None:
  if not isinstance(rngs, nnx.Rngs):
    raise TypeError(f"{owner} rngs must be an nnx.Rngs, such as nnx.Rngs(0); got {type(rngs).__name__}")


class GRUCell(nnx.RNNCellBase):
  r"""GRU cell for ``flax.nnx``, call-compatible with ``flax.nnx.GRUCell``.

  .. math::

     r &= \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}) \\
     z &= \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}) \\
     n &= \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})) \\
     h' &= (1 - z) \odot n + z \odot h

  (:math:`\sigma` is ``gate_fn``, :math:`\tanh` is ``activation_fn``.) It
  takes Flax's constructor arguments and works wherever Flax's cell does
  (``nnx.RNN``, ``nnx.Bidirectional``, ``nnx.scan``, ``nnx.vmap``,
  ``nnx.jit``). Unlike Flax's cell it keeps PyTorch's two biases and stacks
  the gates, as :class:`jaxgru.GRUCell` does: ``input_kernel [I, 3H]``,
  ``recurrent_kernel [H, 3H]``, ``input_bias [3H]``, ``recurrent_bias [3H]``
  (gates ``r, z, n``; no biases with ``use_bias=False``), each an
  ``nnx.Param``. The initializers are called once per gate with ``[I, H]``,
  ``[H, H]`` and ``[H]``, as ``flax.linen.GRUCell`` does, and are not stored.
  Complex inputs or parameters give a complex carry, as in Flax.

  Args:
    in_features: I.
    hidden_features: H.
    variant: ``"reset_after"`` (default) or ``"reset_before"``.
    gate_fn, activation_fn: the activations (sigmoid, tanh).
    kernel_init, recurrent_kernel_init, bias_init: per-gate initializers
      (lecun normal, orthogonal, zeros).
    dtype: compute dtype (``None``: promote inputs and parameters).
    param_dtype: parameter and carry dtype; half precision is initialized in
      float32, then rounded.
    carry_init: default initializer of :meth:`initialize_carry` (zeros).
    use_bias: whether the cell has biases.
    rngs: ``nnx.Rngs`` with a ``params`` stream.
    kernel_metadata, recurrent_kernel_metadata, bias_metadata: metadata of the
      ``nnx.Param`` s (sharding annotations, ...).

  Example:

  >>> from flax import nnx
  >>> rnn = nnx.RNN(GRUCell(3, 8, rngs=nnx.Rngs(0)))
  >>> rnn(jnp.ones((4, 10, 3))).shape  # [B, T, I] -> [B, T, H]
  (4, 10, 8)
  """

  def __init__(
    self,
    in_features: int,
    hidden_features: int,
    *,
    variant: str = "reset_after",
    gate_fn: Callable[..., Array] = jax.nn.sigmoid,
    activation_fn: Callable[..., Array] = jnp.tanh,
    kernel_init: Initializer = nnx.initializers.lecun_normal(),
    recurrent_kernel_init: Initializer = nnx.initializers.orthogonal(),
    bias_init: Initializer = nnx.initializers.zeros_init(),
    dtype=None,
    param_dtype=jnp.float32,
    carry_init: Initializer | None = None,
    use_bias: bool = True,
    rngs: nnx.Rngs,
    kernel_metadata: Mapping[str, Any] = _NO_METADATA,
    recurrent_kernel_metadata: Mapping[str, Any] = _NO_METADATA,
    bias_metadata: Mapping[str, Any] = _NO_METADATA,
  ):
    variant = options_lib.check_cell_options(
      "GRUCell",
      {"in_features": in_features, "hidden_features": hidden_features},
      variant=variant,
      dtype=dtype,
      param_dtype=param_dtype,
      use_bias=use_bias,
      gate_fn=gate_fn,
      activation_fn=activation_fn,
    )
    _check_rngs("GRUCell", rngs)
    self.in_features, self.hidden_features = in_features, hidden_features
    self.variant = variant.value
    self.gate_fn, self.activation_fn = gate_fn, activation_fn
    self.dtype, self.param_dtype = dtype, param_dtype
    self.carry_init = carry_init
    self.use_bias = use_bias
    specs = params_lib.param_specs(
      in_features,
      hidden_features,
      kernel_init=kernel_init,
      recurrent_kernel_init=recurrent_kernel_init,
      bias_init=bias_init,
      use_bias=use_bias,
    )
    metadata = dict(
      input_kernel=kernel_metadata,
      recurrent_kernel=recurrent_kernel_metadata,
      input_bias=bias_metadata,
      recurrent_bias=bias_metadata,
    )
    for name, spec in specs.items():
      setattr(self, name, nnx.Param(params_lib.init_gates(rngs.params(), spec, param_dtype), **metadata[name]))

  def gru_params(self) -> dict[str, Array]:
    """The four arrays :mod:`jaxgru.gates` takes (zero biases when ``use_bias=False``)."""
    return params_lib.with_biases({name: getattr(self, name)[...] for name in gates.PARAM_NAMES if hasattr(self, name)})

  def __call__(self, carry: Array, inputs: Array) -> tuple[Array, Array]:
    """One step, as :meth:`jaxgru.GRUCell.__call__`: ``carry [..., H]``, ``inputs [..., I]`` -> ``(h', h')``.

    Integer and boolean inputs are promoted to ``param_dtype`` and a ``[H]``
    carry broadcasts to batched inputs, as in ``flax.nnx.GRUCell``.
    """
    h = cell_body.cell_step("GRUCell", self, self.gru_params(), carry, inputs)
    return h, h

  def initialize_carry(
    self,
    input_shape: tuple[int, ...],
    rngs: nnx.Rngs | nnx.RngStream | None = None,
    carry_init: Initializer | None = None,
  ) -> Array:
    """Initial carry ``[..., H]`` for inputs ``[..., I]``, as ``flax.nnx.GRUCell.initialize_carry``.

    Args:
      input_shape: the shape of one step's input, ``[..., I]``.
      rngs: ``nnx.Rngs`` (its ``carry`` stream is used) or an ``nnx.RngStream``;
        needed only with a ``carry_init`` (zeros need no key).
      carry_init: initializer (default: the constructor's, else zeros).

    Returns:
      ``[..., H]`` in ``param_dtype``.

    Raises:
      ValueError: a ``carry_init`` without ``rngs``.
    """
    shape = tuple(input_shape[:-1]) + (self.hidden_features,)
    init = carry_init or self.carry_init
    if init is None:
      return jnp.zeros(shape, self.param_dtype)
    if rngs is None:
      raise ValueError("GRUCell.initialize_carry needs rngs (nnx.Rngs or an RngStream) to run a carry_init")
    return init((rngs.carry if isinstance(rngs, nnx.Rngs) else rngs)(), shape, self.param_dtype)

  @property
  def num_feature_axes(self) -> int:
    return 1


class GRU(nnx.Module):
  r"""Multi-layer GRU for ``flax.nnx``: :class:`jaxgru.GRU` (and PyTorch ``nn.GRU``) as an ``nnx.Module``.

  The same computation, options and implementations as :class:`jaxgru.GRU`,
  through the same :func:`jaxgru.gru_stack`. Parameters: one
  :class:`GRUCell` per layer and direction, attributes ``layer_{l}`` and
  ``layer_{l}_reverse``, so ``nnx.state(gru, nnx.Param)`` mirrors the linen
  layer's ``params``. Dropout between layers and recurrent dropout are on
  after ``gru.train()`` (the default, as ``nnx.Dropout``) and off after
  ``gru.eval()``; their masks come from the ``dropout`` stream of ``rngs``.

  The other arguments, ``num_layers``, ``bidirectional``, ``dropout``, ``variant``, ``unroll``,
  ``implementation``, ``time_major``, ``dtype``, ``param_dtype``, ``kernel_init``,
  ``recurrent_kernel_init``, ``bias_init``, ``recurrent_dropout``, ``remat``, ``remat_segment``,
  ``use_bias``, ``gate_fn`` and ``activation_fn``, are the attributes of :class:`jaxgru.GRU`.

  Args:
    in_features: I.
    hidden_features: H.
    rngs: ``nnx.Rngs`` (``params`` stream; ``dropout`` stream when dropping).

  Example:

  >>> from flax import nnx
  >>> gru = GRU(3, 8, num_layers=2, bidirectional=True, rngs=nnx.Rngs(0))
  >>> y, h_n = gru(jnp.ones((4, 10, 3)), seq_lengths=jnp.array([10, 7, 1, 0]))
  >>> y.shape, h_n.shape  # [B, T, D*H], [L*D, B, H]
  ((4, 10, 16), (4, 4, 8))
  """

  def __init__(
    self,
    in_features: int,
    hidden_features: int,
    *,
    num_layers: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
    variant: str = "reset_after",
    unroll: int = 1,
    implementation: str = "auto",
    time_major: bool = False,
    dtype=None,
    param_dtype=jnp.float32,
    kernel_init: Initializer = nnx.initializers.lecun_normal(),
    recurrent_kernel_init: Initializer = nnx.initializers.orthogonal(),
    bias_init: Initializer = nnx.initializers.zeros_init(),
    recurrent_dropout: float = 0.0,
    remat: str = "none",
    remat_segment: int | None = None,
    use_bias: bool = True,
    gate_fn: Callable[..., Array] = jax.nn.sigmoid,
    activation_fn: Callable[..., Array] = jnp.tanh,
    rngs: nnx.Rngs,
  ):
    validation.check_positive_int("GRU in_features", in_features)
    _check_rngs("GRU", rngs)
    options = dict(
      num_layers=num_layers,
      bidirectional=bidirectional,
      dropout=dropout,
      variant=variant,
      unroll=unroll,
      implementation=implementation,
      time_major=time_major,
      dtype=dtype,
      param_dtype=param_dtype,
      recurrent_dropout=recurrent_dropout,
      remat=remat,
      remat_segment=remat_segment,
      use_bias=use_bias,
      gate_fn=gate_fn,
      activation_fn=activation_fn,
    )
    options_lib.check_layer_options("GRU", features=hidden_features, **options)
    # Both dropouts draw from the one 'dropout' stream, as in jaxgru.GRU; .train() and .eval() set deterministic.
    self.deterministic = False
    self.dropout_rngs = rngs["dropout"].fork() if (dropout or recurrent_dropout) else None
    self.in_features, self.hidden_features = in_features, hidden_features
    for name, value in options.items():
      setattr(self, name, value)
    self.num_directions = 2 if bidirectional else 1
    for layer in range(num_layers):
      for direction in range(self.num_directions):
        inputs = in_features if layer == 0 else self.num_directions * hidden_features
        cell = GRUCell(
          inputs,
          hidden_features,
          variant=variant,
          gate_fn=gate_fn,
          activation_fn=activation_fn,
          kernel_init=kernel_init,
          recurrent_kernel_init=recurrent_kernel_init,
          bias_init=bias_init,
          dtype=dtype,
          param_dtype=param_dtype,
          use_bias=use_bias,
          rngs=rngs,
        )
        setattr(self, param_name(layer, direction), cell)

  def __call__(
    self,
    inputs: Array,
    *args,
    seq_lengths: Array | None = None,
    initial_carry: Array | None = None,
    resets: Array | None = None,
    reset_carry: Array | None = None,
  ) -> tuple[Array, Array]:
    """Runs the GRU over a batch of sequences.

    Args:
      inputs: ``[B, T, I]`` (``[T, B, I]`` when ``time_major``) or ``[T, I]``.
      seq_lengths: optional ``[B]`` integer lengths in ``[0, T]`` (as :class:`jaxgru.GRU`).
      initial_carry: optional ``[L*D, B, H]``, ordered as PyTorch's ``h_0``.
      resets, reset_carry: optional episode resets ``[B, T]`` and the states
        they restore ``[L*D, B, H]``, as :meth:`jaxgru.GRU.__call__`.

    Returns:
      ``(outputs [B, T, D*H], final_carry [L*D, B, H])`` (outputs ``[T, B, D*H]``
      when ``time_major``), as PyTorch's ``(output, h_n)``.
    """
    validation.check_keyword_only("GRU", args, ("seq_lengths", "initial_carry", "resets", "reset_carry"))
    cells = [[getattr(self, param_name(l, d)) for d in range(self.num_directions)] for l in range(self.num_layers)]
    training = self.dropout_rngs is not None and not self.deterministic
    keys = sequences.LayerKeys(
      dropout=self.dropout_rngs() if training and self.dropout else None,
      recurrent_dropout=self.dropout_rngs() if training and self.recurrent_dropout else None,
    )
    return sequences.gru_layer(
      lambda _: [[c.gru_params() for c in row] for row in cells],
      inputs,
      features=self.hidden_features,
      options={name: getattr(self, name) for name in options_lib.GRU_OPTIONS},
      keys=keys,
      expected_input_features=self.in_features,
      seq_lengths=seq_lengths,
      initial_carry=initial_carry,
      resets=resets,
      reset_carry=reset_carry,
    )


__all__ = ("GRU", "GRUCell")
