"""Weights in and out: PyTorch ``nn.GRU`` / ``nn.GRUCell``, Flax (linen and nnx) and (in only) Keras 3.

PyTorch stores, for layer ``k`` and suffix ``""`` or ``"_reverse"``::

  weight_ih_l{k}{suffix}  [3H, I_k]     weight_hh_l{k}{suffix}  [3H, H]
  bias_ih_l{k}{suffix}    [3H]          bias_hh_l{k}{suffix}    [3H]

(``nn.GRUCell``: ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``) with
gates in order ``r, z, n``, the order jaxgru uses too, so a jaxgru kernel is
the transposed PyTorch weight; ``bias=False`` has no bias entries and maps to
``use_bias=False``. Flax conversions live in :mod:`jaxgru._src.interop_flax`, Keras
in :mod:`jaxgru._src.interop_keras`; all are importable from here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgru._src import gates
from jaxgru._src import nnx as jaxgru_nnx
from jaxgru._src import validation
from jaxgru._src.cell import GRUCell
from jaxgru._src.interop_flax import from_flax_cell
from jaxgru._src.interop_flax import to_flax_cell
from jaxgru._src.interop_flax import to_linen
from jaxgru._src.interop_flax import to_nnx
from jaxgru._src.interop_keras import from_keras
from jaxgru._src.layer import GRU
from jaxgru._src.layer import param_name

__all__ = ("from_flax_cell", "from_keras", "from_torch", "to_flax_cell", "to_linen", "to_nnx", "to_torch")

_TORCH_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh)(?:_l(\d+)(_reverse)?)?$")
_APIS = ("linen", "nnx")


def _torch_source(source: Any) -> tuple[Mapping, dict, bool]:
  """``(state dict, options read from the module, whether it is a cell)`` of a PyTorch module or state dict."""
  if hasattr(source, "state_dict") and callable(source.state_dict):
    kind = type(source).__name__
    if hasattr(source, "mode"):  # torch.nn.RNNBase: nn.GRU, nn.LSTM, nn.RNN
      if source.mode != "GRU":
        raise ValueError(f"from_torch expects a torch.nn.GRU or torch.nn.GRUCell, got a {source.mode} module")
      if getattr(source, "proj_size", 0):
        raise ValueError("from_torch does not support proj_size")
      options = dict(
        time_major=not source.batch_first,
        dropout=float(source.dropout),
        num_layers=int(source.num_layers),
        bidirectional=bool(source.bidirectional),
      )
      return source.state_dict(), options, False
    if kind != "GRUCell":
      raise ValueError(f"from_torch expects a torch.nn.GRU or torch.nn.GRUCell, got a {kind}")
    return source.state_dict(), {}, True
  if isinstance(source, Mapping):
    cell = any(str(key) in ("weight_ih", "weight_hh") for key in source)
    return source, {}, cell
  raise TypeError(
    f"from_torch expects a torch.nn.GRU, a torch.nn.GRUCell or a state dict mapping names to arrays, "
    f"got {type(source).__name__}"
  )


def _direction_params(entry: dict, name: str, hidden: int, input_features: int | None) -> dict:
  """One direction's jaxgru parameters from PyTorch's ``weight_ih``, ... (checked; ``name`` is the key suffix)."""
  has_bias = "bias_ih" in entry or "bias_hh" in entry
  required = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if has_bias else [])
  missing = [k + name for k in required if k not in entry]
  if missing:
    raise ValueError(f"GRU state dict is missing {missing} (biases must be all present or all absent)")
  if input_features is None:
    if entry["weight_ih"].ndim != 2 or entry["weight_ih"].shape[0] != 3 * hidden:
      raise ValueError(f"'weight_ih{name}' must have shape [3H={3 * hidden}, I], got {entry['weight_ih'].shape}")
    input_features = entry["weight_ih"].shape[1]
  expected = {
    "weight_ih": (3 * hidden, input_features),
    "weight_hh": (3 * hidden, hidden),
    "bias_ih": (3 * hidden,),
    "bias_hh": (3 * hidden,),
  }
  for kind, value in entry.items():
    if value.shape != expected[kind]:
      raise ValueError(f"'{kind}{name}' must have shape {expected[kind]}, got {value.shape}")
  jax_names = {
    "weight_ih": "input_kernel",
    "weight_hh": "recurrent_kernel",
    "bias_ih": "input_bias",
    "bias_hh": "recurrent_bias",
  }
  return {jax_names[kind]: jnp.asarray(value.T if value.ndim == 2 else value) for kind, value in entry.items()}


def from_torch(module_or_state_dict: Any, *, api: str = "linen", rngs: nnx.Rngs | None = None, **layer_kwargs):
  """Builds a jaxgru GRU (or cell) with PyTorch's weights.

  ``num_layers``, ``bidirectional``, I, H and ``use_bias`` are inferred from
  the names and shapes (from the module's attributes when a module is given).
  Given a ``torch.nn.GRU``, its ``batch_first`` (as ``time_major``) and
  ``dropout`` are carried over too. torch is never imported by this function:
  a state dict of NumPy arrays works without it.

  Args:
    module_or_state_dict: a ``torch.nn.GRU``, a ``torch.nn.GRUCell``, or a
      state dict of either (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...;
      ``weight_ih``, ``weight_hh``, ... for a cell) mapping to array-likes.
    api: ``"linen"`` (default) or ``"nnx"``.
    rngs: ``nnx.Rngs`` of the nnx module; required with ``api="nnx"``.
    **layer_kwargs: further options of the layer or cell (``dtype``,
      ``unroll``, ...); they override what was inferred.

  Returns:
    With ``api="linen"``: ``(layer, variables)`` with ``layer`` a
    :class:`jaxgru.GRU` (``layer.apply(variables, x)`` gives PyTorch's
    ``(output, h_n)``), or for a cell a :class:`jaxgru.GRUCell`
    (``cell.apply(variables, h, x)`` gives ``(h', h')``, PyTorch's
    ``cell(x, h)`` twice). With ``api="nnx"``: the :class:`jaxgru.nnx.GRU`
    or :class:`jaxgru.nnx.GRUCell` holding the weights.

  Raises:
    TypeError: the argument is neither a GRU module nor a mapping; no ``rngs`` for nnx.
    ValueError: missing, unexpected or mis-shaped entries (named), or not a GRU.

  >>> H, I = 4, 3
  >>> sd = {"weight_ih_l0": np.zeros((3 * H, I)), "weight_hh_l0": np.zeros((3 * H, H)),
  ...       "bias_ih_l0": np.zeros(3 * H), "bias_hh_l0": np.zeros(3 * H)}
  >>> layer, variables = from_torch(sd)
  >>> layer.features, layer.num_layers, layer.bidirectional, layer.use_bias
  (4, 1, False, True)
  """
  if api not in _APIS:
    raise ValueError(f"from_torch api must be one of {_APIS}, got {api!r}")
  if api == "nnx" and not isinstance(rngs, nnx.Rngs):
    raise TypeError(f"from_torch(api='nnx') needs rngs=nnx.Rngs(...), got {type(rngs).__name__}")
  state, inferred, is_cell = _torch_source(module_or_state_dict)
  arrays: dict[tuple[int, int], dict[str, np.ndarray]] = {}
  for key, value in state.items():
    match = _TORCH_KEY.match(str(key))
    if match is None or (match.group(2) is None) != is_cell:
      names = "'weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'" + ("" if is_cell else " with '_l0', '_l1_reverse', ...")
      raise ValueError(f"unexpected entry {key!r} in GRU{'Cell' if is_cell else ''} state dict; expected {names}")
    layer, reverse = int(match.group(2) or 0), int(bool(match.group(3)))
    arrays.setdefault((layer, reverse), {})[match.group(1)] = validation.as_numpy(repr(key), value)
  if not arrays:
    raise ValueError("GRU state dict is empty; expected entries like 'weight_ih_l0'")
  first = arrays.get((0, 0), {})
  suffix = "" if is_cell else "_l0"
  if "weight_hh" not in first:
    raise ValueError(f"GRU state dict is missing 'weight_hh{suffix}'")
  if first["weight_hh"].ndim != 2 or first["weight_hh"].shape[0] != 3 * first["weight_hh"].shape[1]:
    raise ValueError(f"'weight_hh{suffix}' must have shape [3H, H], got {first['weight_hh'].shape}")
  hidden = first["weight_hh"].shape[1]

  if is_cell:
    params = _direction_params(first, "", hidden, None)
    kwargs = dict(use_bias="input_bias" in params, **layer_kwargs)
    if api == "nnx":
      cell = jaxgru_nnx.GRUCell(params["input_kernel"].shape[0], hidden, **kwargs, rngs=rngs)
      for name, value in params.items():
        getattr(cell, name)[...] = value
      return cell
    return GRUCell(features=hidden, **kwargs), {"params": params}

  # The layers 0, 1, ... present (or the module's); entries beyond them are named, not "missing layers".
  num_layers = inferred.get("num_layers") or next(l for l in range(len(arrays) + 1) if (l, 0) not in arrays)
  num_directions = 2 if inferred.get("bidirectional", any(d for _, d in arrays)) else 1
  unexpected = sorted(
    k + f"_l{l}" + ("_reverse" if d else "")
    for (l, d), e in arrays.items()
    for k in e
    if l >= num_layers or d >= num_directions
  )
  if unexpected:
    raise ValueError(
      f"GRU state dict has unexpected key(s) {unexpected}; it holds layers 0 to {num_layers - 1} "
      f"with {num_directions} direction(s)"
    )
  params = {}
  for layer in range(num_layers):
    for direction in range(num_directions):
      name = f"_l{layer}" + ("_reverse" if direction else "")
      features = None if layer == 0 else num_directions * hidden
      params[param_name(layer, direction)] = _direction_params(
        arrays.get((layer, direction), {}), name, hidden, features
      )
  use_bias = {"input_bias" in p for p in params.values()}
  if len(use_bias) != 1:
    raise ValueError("GRU state dict has biases for some layers only; they must be all present or all absent")
  kwargs = dict(features=hidden, num_layers=num_layers, bidirectional=num_directions == 2, use_bias=use_bias.pop())
  kwargs.update(time_major=inferred.get("time_major", False), dropout=inferred.get("dropout", 0.0))
  kwargs.update(layer_kwargs)
  layer, variables = GRU(**kwargs), {"params": params}
  return to_nnx(layer, variables, rngs=rngs) if api == "nnx" else (layer, variables)


def to_torch(layer: GRU | jaxgru_nnx.GRU, variables: Mapping | None = None) -> dict[str, np.ndarray]:
  """Exports a GRU's parameters with PyTorch's names and layouts.

  Args:
    layer: a :class:`jaxgru.GRU`, or a :class:`jaxgru.nnx.GRU` (then without ``variables``).
    variables: ``{"params": ...}`` of the linen layer, as returned by ``layer.init``.

  Returns:
    PyTorch's state dict as NumPy arrays (no biases for ``use_bias=False``),
    ``{"weight_ih_l0": [3H, I], "weight_hh_l0": [3H, H], "bias_ih_l0": [3H], "bias_hh_l0": [3H], ...}``,
    ready for ``torch.nn.GRU(..., bias=layer.use_bias)`` and its ``load_state_dict``
    (after ``torch.from_numpy`` of each array).

  Raises:
    ValueError: a ``reset_before`` layer (PyTorch has no such GRU) or
      variables that do not match the layer.
  """
  if isinstance(layer, jaxgru_nnx.GRU):
    if variables is not None:
      raise TypeError("to_torch takes no variables with a jaxgru.nnx.GRU (it holds its parameters)")
    layer, variables = to_linen(layer)
  if not isinstance(layer, GRU):
    raise TypeError(f"to_torch expects a jaxgru.GRU or jaxgru.nnx.GRU layer, got {type(layer).__name__}")
  if gates.as_variant(layer.variant) is not gates.Variant.RESET_AFTER:
    raise ValueError("to_torch: PyTorch's nn.GRU computes only the 'reset_after' variant")
  params = variables.get("params", variables) if isinstance(variables, Mapping) else None
  if params is None:
    raise TypeError(f"to_torch expects a variables mapping, got {type(variables).__name__}")
  state = {}
  directions = layer.num_directions
  expected_names = {param_name(l, d) for l in range(layer.num_layers) for d in range(directions)}
  if set(params) != expected_names:
    raise ValueError(f"variables hold {sorted(params)}, but the layer expects {sorted(expected_names)}")
  torch_names = {
    "input_kernel": "weight_ih",
    "recurrent_kernel": "weight_hh",
    "input_bias": "bias_ih",
    "recurrent_bias": "bias_hh",
  }
  names = gates.PARAM_NAMES if layer.use_bias else gates.PARAM_NAMES[:2]
  for l in range(layer.num_layers):
    for d in range(directions):
      p = params[param_name(l, d)]
      if sorted(p) != sorted(names):
        raise ValueError(
          f"{param_name(l, d)} holds {sorted(p)}, but a layer with use_bias={layer.use_bias} has {sorted(names)}"
        )
      if p["recurrent_kernel"].shape != (layer.features, 3 * layer.features):
        raise ValueError(
          f"{param_name(l, d)}/recurrent_kernel has shape {p['recurrent_kernel'].shape}, "
          f"expected {(layer.features, 3 * layer.features)}"
        )
      suffix = f"_l{l}" + ("_reverse" if d else "")
      for name in names:
        value = np.asarray(p[name])
        state[torch_names[name] + suffix] = np.ascontiguousarray(value.T) if value.ndim == 2 else value.copy()
  return state
