"""Weights in and out: PyTorch ``nn.GRU``, ``flax.linen.GRUCell`` and (in only) Keras 3 ``GRU``.

PyTorch stores, for layer ``k`` and suffix ``""`` or ``"_reverse"``::

  weight_ih_l{k}{suffix}  [3H, I_k]     weight_hh_l{k}{suffix}  [3H, H]
  bias_ih_l{k}{suffix}    [3H]          bias_hh_l{k}{suffix}    [3H]

with gates in order ``r, z, n``, the order jaxgru uses too, so a jaxgru kernel is
the transposed PyTorch weight. ``flax.linen.GRUCell`` keeps one ``[I, H]`` /
``[H, H]`` kernel per gate and has no ``b_hr`` and ``b_hz`` (it folds them into
``b_ir`` and ``b_iz``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxgru import gates
from jaxgru.layer import GRU, param_name

_TORCH_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?$")


def _to_numpy(value: Any) -> np.ndarray:
  if hasattr(value, "detach"):  # a torch.Tensor; no torch import needed
    value = value.detach().cpu().numpy()
  return np.asarray(value)


def from_torch(gru_or_state_dict: Any, **layer_kwargs) -> tuple[GRU, dict]:
  """Builds a :class:`jaxgru.GRU` and its variables from PyTorch GRU weights.

  ``num_layers``, ``bidirectional``, I and H are inferred from the names and
  shapes. Given a ``torch.nn.GRU`` module, its ``batch_first`` (as
  ``time_major``) and ``dropout`` are carried over too. torch is never imported
  by this function: a state dict of NumPy arrays works without it.

  Args:
    gru_or_state_dict: a ``torch.nn.GRU`` or a mapping from PyTorch names
      (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...) to array-likes. A module
      or state dict made with ``bias=False`` gives zero biases.
    **layer_kwargs: further :class:`jaxgru.GRU` attributes (``dtype``,
      ``unroll``, ...); they override what was inferred.

  Returns:
    ``(layer, variables)`` such that ``layer.apply(variables, x)`` gives
    PyTorch's ``(output, h_n)``.

  Raises:
    TypeError: the argument is neither a GRU module nor a mapping.
    ValueError: missing, extra or mis-shaped entries, or not a GRU.

  >>> H, I = 4, 3
  >>> sd = {"weight_ih_l0": np.zeros((3 * H, I)), "weight_hh_l0": np.zeros((3 * H, H)),
  ...       "bias_ih_l0": np.zeros(3 * H), "bias_hh_l0": np.zeros(3 * H)}
  >>> layer, variables = from_torch(sd)
  >>> layer.features, layer.num_layers, layer.bidirectional
  (4, 1, False)
  """
  inferred: dict[str, Any] = {}
  if hasattr(gru_or_state_dict, "state_dict") and callable(gru_or_state_dict.state_dict):
    module = gru_or_state_dict
    if getattr(module, "mode", "GRU") != "GRU":
      raise ValueError(f"from_torch expects a torch.nn.GRU, got a {module.mode} module")
    if getattr(module, "proj_size", 0):
      raise ValueError("from_torch does not support proj_size")
    inferred["time_major"] = not module.batch_first
    inferred["dropout"] = float(module.dropout)
    state = module.state_dict()
  elif isinstance(gru_or_state_dict, Mapping):
    state = gru_or_state_dict
  else:
    raise TypeError(
        f"from_torch expects a torch.nn.GRU or a state dict mapping names to arrays, "
        f"got {type(gru_or_state_dict).__name__}"
    )

  arrays: dict[tuple[int, int], dict[str, np.ndarray]] = {}
  for key, value in state.items():
    match = _TORCH_KEY.match(str(key))
    if match is None:
      raise ValueError(
          f"unexpected entry {key!r} in GRU state dict; expected names like "
          "'weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0' (with '_reverse' for direction 1)"
      )
    kind, layer, reverse = match.group(1), int(match.group(2)), int(bool(match.group(3)))
    arrays.setdefault((layer, reverse), {})[kind] = _to_numpy(value)
  if not arrays:
    raise ValueError("GRU state dict is empty; expected entries like 'weight_ih_l0'")

  num_layers = max(layer for layer, _ in arrays) + 1
  bidirectional = any(direction for _, direction in arrays)
  num_directions = 2 if bidirectional else 1
  first = arrays.get((0, 0), {})
  if "weight_hh" not in first:
    raise ValueError("GRU state dict is missing 'weight_hh_l0'")
  if first["weight_hh"].ndim != 2 or first["weight_hh"].shape[0] != 3 * first["weight_hh"].shape[1]:
    raise ValueError(f"'weight_hh_l0' must have shape [3H, H], got {first['weight_hh'].shape}")
  hidden = first["weight_hh"].shape[1]
  has_bias = "bias_ih" in first or "bias_hh" in first

  params = {}
  for layer in range(num_layers):
    for direction in range(num_directions):
      suffix = f"_l{layer}" + ("_reverse" if direction else "")
      entry = arrays.get((layer, direction), {})
      required = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if has_bias else [])
      missing = [k + suffix for k in required if k not in entry]
      extra = [k + suffix for k in entry if k not in required]
      if missing:
        raise ValueError(f"GRU state dict is missing {missing}")
      if extra:
        raise ValueError(f"GRU state dict has unexpected entries {extra} (biases must be all present or all absent)")
      if layer == 0:
        if entry["weight_ih"].ndim != 2 or entry["weight_ih"].shape[0] != 3 * hidden:
          raise ValueError(f"'weight_ih{suffix}' must have shape [3H={3 * hidden}, I], got {entry['weight_ih'].shape}")
        input_features = entry["weight_ih"].shape[1]
      else:
        input_features = num_directions * hidden
      expected = {
          "weight_ih": (3 * hidden, input_features),
          "weight_hh": (3 * hidden, hidden),
          "bias_ih": (3 * hidden,),
          "bias_hh": (3 * hidden,),
      }
      for kind, value in entry.items():
        if value.shape != expected[kind]:
          raise ValueError(f"'{kind}{suffix}' must have shape {expected[kind]}, got {value.shape}")
      zeros = np.zeros(3 * hidden, entry["weight_hh"].dtype)
      params[param_name(layer, direction)] = {
          "input_kernel": jnp.asarray(entry["weight_ih"].T),
          "recurrent_kernel": jnp.asarray(entry["weight_hh"].T),
          "input_bias": jnp.asarray(entry.get("bias_ih", zeros)),
          "recurrent_bias": jnp.asarray(entry.get("bias_hh", zeros)),
      }
  kwargs = dict(features=hidden, num_layers=num_layers, bidirectional=bidirectional, **inferred)
  kwargs.update(layer_kwargs)
  return GRU(**kwargs), {"params": params}


def to_torch(layer: GRU, variables: Mapping) -> dict[str, np.ndarray]:
  """Exports :class:`jaxgru.GRU` variables with PyTorch's names and layouts.

  Args:
    layer: the layer the variables belong to.
    variables: ``{"params": ...}`` as returned by ``layer.init``.

  Returns:
    ``{"weight_ih_l0": [3H, I], "weight_hh_l0": [3H, H], "bias_ih_l0": [3H],
    "bias_hh_l0": [3H], ...}`` as NumPy arrays, ready for
    ``torch.nn.GRU.load_state_dict({k: torch.from_numpy(v) ...})``.

  Raises:
    ValueError: a ``reset_before`` layer (PyTorch has no such GRU) or
      variables that do not match the layer.
  """
  if not isinstance(layer, GRU):
    raise TypeError(f"to_torch expects a jaxgru.GRU layer, got {type(layer).__name__}")
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
  for l in range(layer.num_layers):
    for d in range(directions):
      p = params[param_name(l, d)]
      if p["recurrent_kernel"].shape != (layer.features, 3 * layer.features):
        raise ValueError(
            f"{param_name(l, d)}/recurrent_kernel has shape {p['recurrent_kernel'].shape}, "
            f"expected {(layer.features, 3 * layer.features)}"
        )
      suffix = f"_l{l}" + ("_reverse" if d else "")
      state["weight_ih" + suffix] = np.ascontiguousarray(np.asarray(p["input_kernel"]).T)
      state["weight_hh" + suffix] = np.ascontiguousarray(np.asarray(p["recurrent_kernel"]).T)
      state["bias_ih" + suffix] = np.asarray(p["input_bias"]).copy()
      state["bias_hh" + suffix] = np.asarray(p["recurrent_bias"]).copy()
  return state


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
    ``{"ir": {"kernel", "bias"}, "iz": ..., "in": ..., "hr": {"kernel"},
    "hz": {"kernel"}, "hn": {"kernel", "bias"}}``.
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


_FLAX_NAMES = {"ir": ("kernel", "bias"), "iz": ("kernel", "bias"), "in": ("kernel", "bias"),
               "hr": ("kernel",), "hz": ("kernel",), "hn": ("kernel", "bias")}


def from_flax_cell(cell_params: Mapping) -> dict:
  """Converts ``flax.linen.GRUCell`` parameters to :class:`jaxgru.GRUCell` ones.

  Args:
    cell_params: the flax cell's parameter dict (``ir``, ``iz``, ``in``, ``hr``,
      ``hz``, ``hn``).

  Returns:
    ``{"input_kernel": [I, 3H], "recurrent_kernel": [H, 3H], "input_bias":
    [3H], "recurrent_bias": [3H]}`` with ``b_hr = b_hz = 0``.
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


_KERAS_NAMES = ("kernel", "recurrent_kernel", "bias")


def _keras_reorder(value: np.ndarray, hidden: int) -> np.ndarray:
  """Keras stacks gates ``z, r, h`` on the last axis; jaxgru stacks ``r, z, n``."""
  z, r, h = value[..., :hidden], value[..., hidden : 2 * hidden], value[..., 2 * hidden :]
  return np.concatenate([r, z, h], axis=-1)


def from_keras(weights: Any, *, reset_after: bool | None = None, **layer_kwargs) -> tuple[GRU, dict]:
  r"""Builds a :class:`jaxgru.GRU` and its variables from Keras 3 ``GRU`` weights.

  Keras computes :math:`h_t = z \odot h_{t-1} + (1 - z) \odot \tilde h` with
  gates stacked ``z, r, h``; jaxgru stacks ``r, z, n`` and computes the same
  function. ``reset_after=True`` (Keras' default) keeps a ``[2, 3H]`` bias,
  input row then recurrent row, and maps to ``variant="reset_after"``;
  ``reset_after=False`` keeps one ``[3H]`` input bias and maps to
  ``variant="reset_before"`` with a zero recurrent bias. keras is never
  imported here: plain arrays work without it.

  Args:
    weights: a Keras ``GRU`` layer or ``GRUCell`` (built), its
      ``get_weights()`` list ``[kernel [I, 3H], recurrent_kernel [H, 3H],
      bias]`` (bias omitted for ``use_bias=False``), or a mapping with the keys
      ``"kernel"``, ``"recurrent_kernel"`` and optionally ``"bias"``.
    reset_after: the Keras layer's ``reset_after``; ``None`` reads it from the
      layer or infers it from the bias shape (``True`` without a bias).
    **layer_kwargs: further :class:`jaxgru.GRU` attributes (``dtype``, ...);
      they override what was inferred.

  Returns:
    ``(layer, variables)``: ``layer.apply(variables, x)`` for ``x [B, T, I]``
    gives Keras' ``return_sequences=True`` output and, in ``final_carry[0]``,
    its ``return_state`` state. The cell parameters (for
    :class:`jaxgru.GRUCell` / :func:`jaxgru.gru_step`) are
    ``variables["params"]["layer_0"]``.

  Raises:
    TypeError: ``weights`` is none of the accepted kinds.
    ValueError: missing, extra or mis-shaped arrays, a ``reset_after`` that
      contradicts the bias shape, or a Keras layer whose activations or
      ``go_backwards`` jaxgru does not reproduce.

  >>> H, I = 2, 3
  >>> kw = {"kernel": np.zeros((I, 3 * H)), "recurrent_kernel": np.zeros((H, 3 * H)),
  ...       "bias": np.zeros((2, 3 * H))}
  >>> layer, variables = from_keras(kw)
  >>> layer.features, layer.variant, variables["params"]["layer_0"]["recurrent_bias"].shape
  (2, 'reset_after', (6,))
  """
  inferred: dict[str, Any] = {}
  if hasattr(weights, "get_weights") and hasattr(weights, "get_config"):
    config = weights.get_config()
    cell_config = config.get("cell", {}).get("config", config) if isinstance(config.get("cell"), Mapping) else config
    for key, expected in (("activation", "tanh"), ("recurrent_activation", "sigmoid")):
      if key in cell_config and cell_config[key] != expected:
        raise ValueError(f"from_keras supports {key}={expected!r} only, the layer has {cell_config[key]!r}")
    if config.get("go_backwards"):
      raise ValueError("from_keras does not support go_backwards=True; reverse the inputs instead")
    if reset_after is None and "reset_after" in cell_config:
      reset_after = bool(cell_config["reset_after"])
    if cell_config.get("recurrent_dropout"):
      inferred["recurrent_dropout"] = float(cell_config["recurrent_dropout"])
    arrays = weights.get_weights()
    if not arrays:
      raise ValueError("from_keras got a Keras layer without weights; build it (call it once) first")
    arrays = dict(zip(_KERAS_NAMES, arrays))
  elif isinstance(weights, Mapping):
    arrays = dict(weights)
  elif isinstance(weights, (list, tuple)):
    if len(weights) not in (2, 3):
      raise ValueError(
          f"from_keras expects [kernel, recurrent_kernel] or [kernel, recurrent_kernel, bias], "
          f"got a list of {len(weights)} arrays"
      )
    arrays = dict(zip(_KERAS_NAMES, weights))
  else:
    raise TypeError(
        "from_keras expects a Keras GRU layer, a get_weights() list or a mapping with "
        f"'kernel', 'recurrent_kernel', 'bias'; got {type(weights).__name__}"
    )
  missing = [k for k in _KERAS_NAMES[:2] if k not in arrays]
  extra = sorted(str(k) for k in arrays if k not in _KERAS_NAMES)
  if missing or extra:
    raise ValueError(
        f"from_keras: missing {missing}, unexpected {extra}; expected 'kernel', 'recurrent_kernel' "
        "and optionally 'bias'"
    )
  arrays = {k: _to_numpy(v) for k, v in arrays.items()}
  recurrent = arrays["recurrent_kernel"]
  if recurrent.ndim != 2 or recurrent.shape[1] != 3 * recurrent.shape[0]:
    raise ValueError(f"Keras 'recurrent_kernel' must have shape [H, 3H], got {recurrent.shape}")
  hidden = recurrent.shape[0]
  kernel = arrays["kernel"]
  if kernel.ndim != 2 or kernel.shape[1] != 3 * hidden:
    raise ValueError(f"Keras 'kernel' must have shape [I, 3H={3 * hidden}], got {kernel.shape}")
  bias = arrays.get("bias")
  if bias is None:
    reset_after = True if reset_after is None else bool(reset_after)
    input_bias = recurrent_bias = np.zeros(3 * hidden, kernel.dtype)
  else:
    shape_says = {(2, 3 * hidden): True, (3 * hidden,): False}.get(bias.shape)
    if shape_says is None:
      raise ValueError(
          f"Keras 'bias' must have shape [2, 3H]={(2, 3 * hidden)} (reset_after=True) or "
          f"[3H]={(3 * hidden,)} (reset_after=False), got {bias.shape}"
      )
    if reset_after is not None and bool(reset_after) != shape_says:
      raise ValueError(
          f"Keras 'bias' of shape {bias.shape} belongs to reset_after={shape_says}, but reset_after={reset_after} was given"
      )
    reset_after = shape_says
    if reset_after:
      input_bias, recurrent_bias = bias[0], bias[1]
    else:  # Keras' reset_before GRU has only the input bias.
      input_bias, recurrent_bias = bias, np.zeros(3 * hidden, bias.dtype)
  params = {
      "input_kernel": jnp.asarray(_keras_reorder(kernel, hidden)),
      "recurrent_kernel": jnp.asarray(_keras_reorder(recurrent, hidden)),
      "input_bias": jnp.asarray(_keras_reorder(input_bias, hidden)),
      "recurrent_bias": jnp.asarray(_keras_reorder(recurrent_bias, hidden)),
  }
  variant = gates.Variant.RESET_AFTER if reset_after else gates.Variant.RESET_BEFORE
  kwargs = dict(features=hidden, variant=variant.value, **inferred)
  kwargs.update(layer_kwargs)
  return GRU(**kwargs), {"params": {param_name(0, 0): params}}
