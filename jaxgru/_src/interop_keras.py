"""Weights in from Keras 3 ``GRU`` layers and cells (:func:`from_keras`; also :func:`jaxgru.interop.from_keras`).

Keras stacks the gates ``z, r, h`` on the last axis of its kernels and biases;
jaxgru stacks ``r, z, n``. keras is never imported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxgru._src import gates
from jaxgru._src import validation
from jaxgru._src.layer import GRU
from jaxgru._src.sequences import param_name

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
      Without a bias (Keras ``use_bias=False``) the layer is made with
      ``use_bias=False``. Keras' ``recurrent_dropout`` is carried over; its
      input ``dropout`` is refused (jaxgru has none; see Raises).
    **layer_kwargs: further :class:`jaxgru.GRU` attributes (``dtype``, ...);
      they override what was inferred.

  Returns:
    ``(layer, variables)``: ``layer.apply(variables, x)`` for ``x [B, T, I]``
    gives Keras' ``return_sequences=True`` output and, in ``final_carry[0]``,
    its ``return_state`` state. The cell parameters (for
    :class:`jaxgru.GRUCell` with the layer's ``use_bias``) are
    ``variables["params"]["layer_0"]`` (for :func:`jaxgru.gru_step`, with
    zero biases added where ``use_bias`` is false).

  Raises:
    TypeError: ``weights`` is none of the accepted kinds.
    ValueError: missing, extra or mis-shaped arrays, a ``reset_after`` that
      contradicts the bias shape, or a Keras layer whose activations,
      ``go_backwards`` or input ``dropout`` jaxgru does not reproduce (convert
      ``layer.get_weights()`` instead and apply dropout to the inputs yourself).

  >>> H, I = 2, 3
  >>> kw = {"kernel": np.zeros((I, 3 * H)), "recurrent_kernel": np.zeros((H, 3 * H)),
  ...       "bias": np.zeros((2, 3 * H))}
  >>> layer, variables = from_keras(kw)
  >>> layer.features, layer.variant, variables["params"]["layer_0"]["recurrent_bias"].shape
  (2, 'reset_after', (6,))
  """
  inferred: dict[str, Any] = {}
  if reset_after is not None:
    validation.check_bool("from_keras reset_after", reset_after)
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
    if cell_config.get("dropout"):
      raise ValueError(
        f"from_keras: the Keras layer has dropout={cell_config['dropout']} on its inputs, which "
        "jaxgru.GRU does not have; convert layer.get_weights() instead and apply a dropout "
        f"(flax.linen.Dropout or flax.nnx.Dropout, rate={cell_config['dropout']}) to the inputs yourself"
      )
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
      f"from_keras: missing {missing}, unexpected {extra}; expected 'kernel', 'recurrent_kernel' and optionally 'bias'"
    )
  arrays = {k: validation.as_numpy(f"Keras {k!r}", v) for k, v in arrays.items()}
  recurrent = arrays["recurrent_kernel"]
  if recurrent.ndim != 2 or recurrent.shape[1] != 3 * recurrent.shape[0]:
    raise ValueError(f"Keras 'recurrent_kernel' must have shape [H, 3H], got {recurrent.shape}")
  hidden = recurrent.shape[0]
  kernel = arrays["kernel"]
  if kernel.ndim != 2 or kernel.shape[1] != 3 * hidden:
    raise ValueError(f"Keras 'kernel' must have shape [I, 3H={3 * hidden}], got {kernel.shape}")
  bias = arrays.get("bias")
  params = {
    "input_kernel": jnp.asarray(_keras_reorder(kernel, hidden)),
    "recurrent_kernel": jnp.asarray(_keras_reorder(recurrent, hidden)),
  }
  if bias is None:  # Keras use_bias=False
    reset_after = True if reset_after is None else reset_after
    inferred["use_bias"] = False
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
    params["input_bias"] = jnp.asarray(_keras_reorder(input_bias, hidden))
    params["recurrent_bias"] = jnp.asarray(_keras_reorder(recurrent_bias, hidden))
  variant = gates.Variant.RESET_AFTER if reset_after else gates.Variant.RESET_BEFORE
  kwargs = dict(features=hidden, variant=variant.value, **inferred)
  kwargs.update(layer_kwargs)
  return GRU(**kwargs), {"params": {param_name(0, 0): params}}
