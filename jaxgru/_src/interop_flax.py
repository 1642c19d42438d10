"""Weights between jaxgru and Flax: ``flax.linen.GRUCell`` parameters, and linen <-> nnx layers.

``flax.linen.GRUCell`` keeps one ``[I, H]`` / ``[H, H]`` kernel per gate and
has no ``b_hr`` and ``b_hz`` (it folds them into ``b_ir`` and ``b_iz``);
jaxgru stacks the gates and keeps both biases. Everything here is also
available as ``jaxgru.interop.<name>``.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgru._src import gates
from jaxgru._src import nnx as jaxgru_nnx
from jaxgru._src.layer import GRU
from jaxgru._src.options import GRU_OPTIONS as OPTIONS
from jaxgru._src.sequences import param_name


def _check_cell_params(cell_params: Mapping, names, who: str) -> None:
  if not isinstance(cell_params, Mapping):
    raise TypeError(f"{who} expects a parameter dict, got {type(cell_params).__name__}")
  missing = sorted(set(names) - set(cell_params))
  extra = sorted(set(cell_params) - set(names))
  if missing or extra:
    raise ValueError(f"{who}: parameters missing {missing}, unexpected {extra}; expected {sorted(names)}")


def to_flax_cell(cell_params: Mapping) -> dict:
  """Converts :class:`jaxgru.GRUCell` parameters to ``flax.linen.GRUCell`` ones.

  Flax's cell has no ``b_hr``, ``b_hz``; they are added to ``b_ir``, ``b_iz``,
  which computes the same function (``reset_after`` only).

  Args:
    cell_params: ``{"input_kernel": [I, 3H], "recurrent_kernel": [H, 3H],
      "input_bias": [3H], "recurrent_bias": [3H]}``.

  Returns:
    Flax's ``GRUCell`` parameters, one Dense per gate and input:
    ``{"ir": {"kernel", "bias"}, "iz": ..., "in": ..., "hr": {"kernel"}, "hz": {"kernel"}, "hn": {"kernel", "bias"}}``.
  """
  _check_cell_params(cell_params, gates.PARAM_NAMES, "to_flax_cell")
  w_i = jnp.split(jnp.asarray(cell_params["input_kernel"]), 3, axis=-1)
  w_h = jnp.split(jnp.asarray(cell_params["recurrent_kernel"]), 3, axis=-1)
  b_i = jnp.split(jnp.asarray(cell_params["input_bias"]), 3)
  b_h = jnp.split(jnp.asarray(cell_params["recurrent_bias"]), 3)
  return {
    "ir": {"kernel": w_i[0], "bias": b_i[0] + b_h[0]},
    "iz": {"kernel": w_i[1], "bias": b_i[1] + b_h[1]},
    "in": {"kernel": w_i[2], "bias": b_i[2]},
    "hr": {"kernel": w_h[0]},
    "hz": {"kernel": w_h[1]},
    "hn": {"kernel": w_h[2], "bias": b_h[2]},
  }


_FLAX_NAMES = {
  "ir": ("kernel", "bias"),
  "iz": ("kernel", "bias"),
  "in": ("kernel", "bias"),
  "hr": ("kernel",),
  "hz": ("kernel",),
  "hn": ("kernel", "bias"),
}


def from_flax_cell(cell_params: Mapping) -> dict:
  """Converts ``flax.linen.GRUCell`` parameters to :class:`jaxgru.GRUCell` ones.

  Args:
    cell_params: the flax cell's parameter dict (``ir``, ``iz``, ``in``, ``hr``,
      ``hz``, ``hn``).

  Returns:
    jaxgru's parameters of one direction, with ``b_hr = b_hz = 0``:
    ``{"input_kernel": [I, 3H], "recurrent_kernel": [H, 3H], "input_bias": [3H], "recurrent_bias": [3H]}``.
  """
  _check_cell_params(cell_params, _FLAX_NAMES, "from_flax_cell")
  for name, leaves in _FLAX_NAMES.items():
    _check_cell_params(cell_params[name], leaves, f"from_flax_cell[{name!r}]")
  hn_bias = jnp.asarray(cell_params["hn"]["bias"])
  return {
    "input_kernel": jnp.concatenate([jnp.asarray(cell_params[g]["kernel"]) for g in ("ir", "iz", "in")], -1),
    "recurrent_kernel": jnp.concatenate([jnp.asarray(cell_params[g]["kernel"]) for g in ("hr", "hz", "hn")], -1),
    "input_bias": jnp.concatenate([jnp.asarray(cell_params[g]["bias"]) for g in ("ir", "iz", "in")]),
    "recurrent_bias": jnp.concatenate([jnp.zeros_like(hn_bias), jnp.zeros_like(hn_bias), hn_bias]),
  }


def to_nnx(layer: GRU, variables: Mapping, *, rngs: nnx.Rngs) -> jaxgru_nnx.GRU:
  """Turns a linen :class:`jaxgru.GRU` and its variables into the equal :class:`jaxgru.nnx.GRU`.

  The parameters are copied as they are (``to_linen(to_nnx(...))`` gives them
  back bit for bit); the options of the layer are carried over.

  Args:
    layer: the linen layer.
    variables: ``{"params": ...}`` as ``layer.init`` returns them.
    rngs: ``nnx.Rngs`` of the new module (its ``dropout`` stream drives dropout).

  Returns:
    A :class:`jaxgru.nnx.GRU` computing what ``layer.apply(variables, ...)`` does.

  Raises:
    TypeError: not a :class:`jaxgru.GRU`, or variables that are not a mapping.
    ValueError: variables that do not fit the layer (names or shapes).

  >>> import jaxgru
  >>> layer = jaxgru.GRU(4, num_layers=2)
  >>> variables = layer.init(jax.random.key(0), jnp.ones((1, 3, 2)))
  >>> module = to_nnx(layer, variables, rngs=nnx.Rngs(0))
  >>> bool(jnp.array_equal(module(jnp.ones((1, 3, 2)))[0], layer.apply(variables, jnp.ones((1, 3, 2)))[0]))
  True
  """
  if not isinstance(layer, GRU):
    raise TypeError(f"to_nnx expects a jaxgru.GRU layer, got {type(layer).__name__}")
  if not isinstance(variables, Mapping) or not isinstance(variables.get("params"), Mapping):
    raise TypeError(
      f"to_nnx expects variables {{'params': ...}} as layer.init returns them, got {type(variables).__name__}"
    )
  params = variables["params"]
  first = params.get(param_name(0, 0), {})
  if "input_kernel" not in first:
    raise ValueError(f"to_nnx: variables['params'] holds {sorted(params)}, without 'layer_0/input_kernel'")
  options = {name: getattr(layer, name) for name in OPTIONS}
  module = jaxgru_nnx.GRU(first["input_kernel"].shape[0], layer.features, **options, rngs=rngs)
  state = nnx.state(module, nnx.Param)
  want = jax.tree.map(jnp.shape, state.to_pure_dict())
  have = jax.tree.map(jnp.shape, dict(params))
  if want != have:
    raise ValueError(f"to_nnx: variables hold parameters of shapes {have}, but the layer has {want}")
  nnx.replace_by_pure_dict(state, jax.tree.map(jnp.asarray, dict(params)))
  nnx.update(module, state)
  return module


def to_linen(module: jaxgru_nnx.GRU) -> tuple[GRU, dict]:
  """Turns a :class:`jaxgru.nnx.GRU` into the equal linen :class:`jaxgru.GRU` and its variables.

  Args:
    module: the nnx layer.

  Returns:
    ``(layer, {"params": ...})``; ``to_nnx(layer, variables, rngs=...)`` gives
    the module's parameters back exactly.

  Raises:
    TypeError: not a :class:`jaxgru.nnx.GRU`.

  >>> module = jaxgru_nnx.GRU(2, 4, bidirectional=True, rngs=nnx.Rngs(0))
  >>> layer, variables = to_linen(module)
  >>> layer.features, sorted(variables["params"])
  (4, ['layer_0', 'layer_0_reverse'])
  """
  if not isinstance(module, jaxgru_nnx.GRU):
    raise TypeError(f"to_linen expects a jaxgru.nnx.GRU, got {type(module).__name__}")
  layer = GRU(features=module.hidden_features, **{name: getattr(module, name) for name in OPTIONS})
  return layer, {"params": nnx.state(module, nnx.Param).to_pure_dict()}
