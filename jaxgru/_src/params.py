"""GRU parameters: their shapes, per-gate initialization and the bias-free form.

Shared by the flax.linen modules (:mod:`jaxgru._src.cell`, :mod:`jaxgru._src.layer`) and
the flax.nnx ones (:mod:`jaxgru.nnx`), so both create the same arrays from the
same keys. Shapes follow the legend in :mod:`jaxgru.gates`.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgru._src import dtypes
from jaxgru._src import gates
from jaxgru._src import validation

Array = jax.Array
Initializer = Callable[..., Array]

NUM_GATES = 3  # r, z, n


class ParamSpec(NamedTuple):
  """How one stacked GRU parameter is made: ``init`` called per gate with ``gate_shape``."""

  gate_shape: tuple[int, ...]  # [I, H], [H, H] or [H]: one gate's block
  init: Initializer  # flax initializer, init(key, gate_shape, dtype)


def param_specs(
  input_features: int,
  features: int,
  *,
  kernel_init: Initializer,
  recurrent_kernel_init: Initializer,
  bias_init: Initializer,
  use_bias: bool = True,
) -> dict[str, ParamSpec]:
  """The parameters of one GRU direction, by name (biases only when ``use_bias``).

  Args:
    input_features: I.
    features: H.
    kernel_init, recurrent_kernel_init, bias_init: flax initializers, each
      applied to one gate's block (as ``flax.linen.GRUCell`` applies them).
    use_bias: whether the biases exist.

  Returns:
    ``{"input_kernel": ([I, H], kernel_init), "recurrent_kernel": ([H, H],
    recurrent_kernel_init)}`` and, with ``use_bias``, ``"input_bias"`` and
    ``"recurrent_bias"`` as ``([H], bias_init)``.
  """
  specs = {
    "input_kernel": ParamSpec((input_features, features), kernel_init),
    "recurrent_kernel": ParamSpec((features, features), recurrent_kernel_init),
  }
  if validation.check_bool("use_bias", use_bias):
    specs["input_bias"] = ParamSpec((features,), bias_init)
    specs["recurrent_bias"] = ParamSpec((features,), bias_init)
  return specs


def init_param(key: Array, init: Initializer, shape: tuple[int, ...], param_dtype) -> Array:
  """``init(key, shape)`` in :func:`jaxgru._src.dtypes.init_dtype` (float32 for half precision), rounded to ``param_dtype``.

  Every module initializes its parameters through this, so half-precision
  parameters work on every backend (the orthogonal initializer's QR has no
  bfloat16 kernel on CPU) and are drawn from the same distribution everywhere.

  >>> import flax.linen as nn
  >>> init_param(jax.random.key(0), nn.initializers.orthogonal(), (4, 4), jnp.bfloat16).dtype
  dtype(bfloat16)
  """
  return init(key, shape, dtypes.init_dtype(param_dtype)).astype(param_dtype)


def init_gates(key: Array, spec: ParamSpec, param_dtype) -> Array:
  """One stacked parameter: ``spec.init`` once per gate, blocks concatenated in order ``r, z, n``.

  Args:
    key: PRNG key, split into one key per gate.
    spec: the gate shape and initializer (:func:`param_specs`).
    param_dtype: dtype of the result.

  Returns:
    ``[..., 3 * gate_shape[-1]]``: ``[I, 3H]``, ``[H, 3H]`` or ``[3H]``.

  >>> import flax.linen as nn
  >>> w = init_gates(jax.random.key(0), ParamSpec((4, 4), nn.initializers.orthogonal()), jnp.bfloat16)
  >>> w.shape, w.dtype
  ((4, 12), dtype(bfloat16))
  """
  keys = jax.random.split(key, NUM_GATES)
  return jnp.concatenate([init_param(k, spec.init, spec.gate_shape, param_dtype) for k in keys], axis=-1)


def with_biases(params: Mapping[str, Array]) -> dict[str, Array]:
  """``params`` with constant zero biases ``[3H]`` where they are absent (a GRU built with ``use_bias=False``).

  The pure maths (:mod:`jaxgru.gates`) always takes four arrays; zero biases
  compute the bias-free GRU, and their gradients are simply not kept.

  >>> p = with_biases({"input_kernel": jnp.ones((2, 6)), "recurrent_kernel": jnp.ones((2, 6))})
  >>> sorted(p), p["recurrent_bias"].shape
  (['input_bias', 'input_kernel', 'recurrent_bias', 'recurrent_kernel'], (6,))
  """
  params = dict(params)
  kernel = params["recurrent_kernel"]
  for name in gates.PARAM_NAMES[2:]:
    if name not in params:
      params[name] = jnp.zeros(kernel.shape[-1:], kernel.dtype)
  return params
