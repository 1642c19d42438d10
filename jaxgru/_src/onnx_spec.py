"""A GRU layer in ONNX's terms, checked before a graph is built: sizes, options, activations, weights.

:func:`layer_spec` reads a :class:`jaxgru.GRU` with its variables (or a
:class:`jaxgru.nnx.GRU`) into a :class:`LayerSpec` for
:func:`jaxgru._src.export_onnx.onnx_gru_graph`; :func:`onnx_activation` maps
a JAX activation onto one of ONNX's recurrent activations.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgru._src import interop
from jaxgru._src import nnx as jaxgru_nnx
from jaxgru._src.layer import GRU
from jaxgru._src.sequences import param_name


class Activation(NamedTuple):
  """One of ONNX's recurrent activations, equal to a JAX function."""

  name: str  # the name in the GRU's ``activations`` attribute
  alpha: float | None  # its ``activation_alpha`` entry, when it takes one
  beta: float | None  # its ``activation_beta`` entry, when it takes one


# The JAX functions ONNX's GRU can express (by their public names), each checked against ONNX Runtime in the tests.
ACTIVATIONS: tuple[tuple[str, Callable, Activation], ...] = (
  ("jax.nn.sigmoid", jax.nn.sigmoid, Activation("Sigmoid", None, None)),
  ("jax.lax.logistic", jax.lax.logistic, Activation("Sigmoid", None, None)),
  ("jnp.tanh", jnp.tanh, Activation("Tanh", None, None)),
  ("jax.lax.tanh", jax.lax.tanh, Activation("Tanh", None, None)),
  ("jax.nn.relu", jax.nn.relu, Activation("Relu", None, None)),
  # jax.nn.hard_sigmoid(x) = relu6(x + 3) / 6 = clip(x / 6 + 1/2, 0, 1): ONNX's HardSigmoid.
  ("jax.nn.hard_sigmoid", jax.nn.hard_sigmoid, Activation("HardSigmoid", 1.0 / 6.0, 0.5)),
  ("jax.nn.soft_sign", jax.nn.soft_sign, Activation("Softsign", None, None)),
)


def onnx_activation(fn: Callable, option: str) -> Activation:
  """The ONNX activation equal to ``fn``.

  Args:
    fn: a layer's ``gate_fn`` or ``activation_fn``.
    option: its name, for the message.

  Raises:
    ValueError: ``fn`` is none of :data:`ACTIVATIONS`.

  >>> onnx_activation(jax.nn.hard_sigmoid, "gate_fn")
  Activation(name='HardSigmoid', alpha=0.16666666666666666, beta=0.5)
  """
  for _, candidate, activation in ACTIVATIONS:
    if fn is candidate:
      return activation
  known = ", ".join(name for name, _, _ in ACTIVATIONS)
  raise ValueError(
    f"to_onnx: {option}={getattr(fn, '__name__', fn)!r} has no equal among the activations of ONNX's GRU "
    f"operator; the export can express {known}. Use to_stablehlo for other functions."
  )


class LayerSpec(NamedTuple):
  """What the ONNX graph of a GRU layer needs, checked: sizes, options and float32 arrays."""

  input_features: int  # I
  features: int  # H
  num_layers: int  # L
  num_directions: int  # D
  reset_after: bool  # variant "reset_after" (ONNX linear_before_reset=1)
  time_major: bool  # inputs and outputs [T, B, ...]
  use_bias: bool  # the layer has biases
  activations: tuple[Activation, Activation]  # (gate_fn, activation_fn)
  params: tuple[tuple[Mapping[str, np.ndarray], ...], ...]  # [l][d]: the four (or two) float32 arrays


def layer_spec(layer, variables: Mapping | None = None) -> LayerSpec:
  """Checks a layer for export and collects its sizes, options and parameters.

  Args:
    layer: a :class:`jaxgru.GRU`, or a :class:`jaxgru.nnx.GRU` (then without ``variables``).
    variables: ``{"params": ...}`` of the linen layer, as returned by ``layer.init``.

  Returns:
    A :class:`LayerSpec`.

  Raises:
    TypeError: not a jaxgru GRU layer, or variables missing or given with an nnx layer.
    ValueError: an option the export cannot express (a ``gate_fn`` or
      ``activation_fn`` with no ONNX equal, a ``dtype`` or ``param_dtype``
      other than float32), or variables that do not match the layer.
  """
  if isinstance(layer, jaxgru_nnx.GRU):
    if variables is not None:
      raise TypeError("to_onnx takes no variables with a jaxgru.nnx.GRU (the layer holds its parameters)")
    layer, variables = interop.to_linen(layer)
  if not isinstance(layer, GRU):
    raise TypeError(f"to_onnx expects a jaxgru.GRU (with variables) or a jaxgru.nnx.GRU, got {type(layer).__name__}")
  if not isinstance(variables, Mapping):
    raise TypeError(
      f"to_onnx expects the layer's variables {{'params': ...}} with a jaxgru.GRU, got {type(variables).__name__}"
    )
  # Training-time options (dropout, recurrent_dropout, remat, unroll, implementation) leave
  # the inference graph unchanged; the compute dtype does not.
  for option in ("dtype", "param_dtype"):
    value = getattr(layer, option)
    if value is not None and jnp.dtype(value) != jnp.float32:
      raise ValueError(
        f"to_onnx: {option}={jnp.dtype(value).name} is not supported: the exported graph computes in float32 "
        f"and would not give the layer's {jnp.dtype(value).name} numbers; export a layer with {option}=float32"
        + (" (or None)" if option == "dtype" else "")
      )
  activations = (onnx_activation(layer.gate_fn, "gate_fn"), onnx_activation(layer.activation_fn, "activation_fn"))
  params = variables.get("params", variables)
  hidden, directions = layer.features, layer.num_directions
  expected = {param_name(l, d) for l in range(layer.num_layers) for d in range(directions)}
  if set(params) != expected:
    raise ValueError(f"to_onnx: variables hold {sorted(params)}, but the layer expects {sorted(expected)}")
  names = ("input_kernel", "recurrent_kernel") + (("input_bias", "recurrent_bias") if layer.use_bias else ())
  first = params[param_name(0, 0)].get("input_kernel")
  input_features = int(np.shape(first)[0]) if first is not None and np.ndim(first) == 2 else 0
  arrays = []
  for l in range(layer.num_layers):
    row = []
    for d in range(directions):
      name = param_name(l, d)
      p = params[name]
      if sorted(p) != sorted(names):
        raise ValueError(
          f"to_onnx: {name} holds {sorted(p)}, but a layer with use_bias={layer.use_bias} has {sorted(names)}"
        )
      inputs = input_features if l == 0 else directions * hidden
      shapes = {
        "input_kernel": (inputs, 3 * hidden),
        "recurrent_kernel": (hidden, 3 * hidden),
        "input_bias": (3 * hidden,),
        "recurrent_bias": (3 * hidden,),
      }
      for key in names:
        if np.shape(p[key]) != shapes[key] or jnp.dtype(p[key].dtype) != jnp.float32:
          raise ValueError(
            f"to_onnx: {name}/{key} is {np.shape(p[key])} {jnp.dtype(p[key].dtype).name}, "
            f"expected {shapes[key]} float32 (features={hidden}, input features {input_features})"
          )
      row.append({key: np.asarray(p[key]) for key in names})
    arrays.append(tuple(row))
  return LayerSpec(
    input_features=input_features,
    features=hidden,
    num_layers=layer.num_layers,
    num_directions=directions,
    reset_after=layer.variant == "reset_after",
    time_major=layer.time_major,
    use_bias=layer.use_bias,
    activations=activations,
    params=tuple(arrays),
  )
