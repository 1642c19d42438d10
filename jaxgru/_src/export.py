r"""A trained GRU out of Python: ONNX with the native ``GRU`` operator, StableHLO through :mod:`jax.export`.

:func:`to_onnx` maps a :class:`jaxgru.GRU` (with its variables) or a
:class:`jaxgru.nnx.GRU` onto ONNX's ``GRU`` operator, one node per layer,
which ONNX Runtime runs as one fused kernel. :func:`onnx_gru_graph` gives the
same nodes as a graph to build into a larger model (a forecaster's scaling and
head around the GRU). :func:`to_stablehlo` serializes a jitted JAX function with
symbolic dimensions for another JAX program; :func:`load_stablehlo` reads it back.

How a jaxgru layer maps onto ONNX's ``GRU`` (shapes per the legend in :mod:`jaxgru.gates`)::

  jaxgru                                      ONNX GRU (one node per layer)
  input_kernel [I_l, 3H], gates r, z, n       W [D, 3H, I_l], gates z, r, h (transposed, reordered)
  recurrent_kernel [H, 3H]                    R [D, 3H, H]
  input_bias, recurrent_bias [3H]             B [D, 6H] = [Wb | Rb] (absent without use_bias)
  variant reset_after / reset_before          linear_before_reset 1 / 0
  bidirectional                               direction "bidirectional" (else "forward")
  gate_fn, activation_fn                      activations [f, g] per direction
  seq_lengths [B]                             sequence_lens [B] int32
  initial_carry [L*D, B, H]                   initial_h [D, B, H] of each layer
  outputs [B, T, D*H] ([T, B, D*H])           Y [T, D, B, H], transposed and reshaped
  final_carry [L*D, B, H]                     Y_h [D, B, H] of each layer, concatenated

ONNX Runtime gives a zero ``Y_h`` for a sequence of length 0 where jaxgru
(and PyTorch) return the initial state; with both ``sequence_lens`` and
``initial_h`` the graph selects the initial state there (a ``Where`` node),
so the exported model returns what the layer returns.

Example:

>>> import jax, jax.numpy as jnp, numpy as np
>>> import jaxgru, onnxruntime
>>> gru = jaxgru.GRU(features=8, num_layers=2, bidirectional=True)
>>> x = jnp.ones((4, 10, 3))  # [B, T, I]
>>> variables = gru.init(jax.random.key(0), x)
>>> model = to_onnx(gru, variables)
>>> session = onnxruntime.InferenceSession(model.SerializeToString())
>>> y, h_n = session.run(None, {"inputs": np.ones((4, 10, 3), np.float32)})
>>> y.shape, h_n.shape  # [B, T, D*H], [L*D, B, H]
((4, 10, 16), (4, 4, 8))
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgru._src import interop
from jaxgru._src import nnx as jaxgru_nnx
from jaxgru._src.layer import GRU
from jaxgru._src.sequences import param_name

# Opset of the exported models: the GRU operator is unchanged from opset 14 to 21, and ONNX
# Runtime (1.12 and later), TensorRT and OpenVINO all run opset 17.
DEFAULT_OPSET = 17
MIN_OPSET = 14  # GRU-14: the current definition of the operator

# The names of the inputs and outputs of an exported layer.
INPUTS = "inputs"  # [B, T, I] ([T, B, I] when time_major), float32
SEQUENCE_LENS = "sequence_lens"  # [B] int32 in [0, T], with with_sequence_lens
INITIAL_H = "initial_h"  # [L*D, B, H] float32, with with_initial_h
OUTPUTS = "outputs"  # [B, T, D*H] ([T, B, D*H] when time_major), float32
FINAL_STATE = "final_state"  # [L*D, B, H] float32

ONNX_EXTRA = "pip install 'jaxgru[onnx]'"


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
    raise TypeError(f"to_onnx expects the layer's variables {{'params': ...}} with a jaxgru.GRU, got {type(variables).__name__}")
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
        raise ValueError(f"to_onnx: {name} holds {sorted(p)}, but a layer with use_bias={layer.use_bias} has {sorted(names)}")
      inputs = input_features if l == 0 else directions * hidden
      shapes = {"input_kernel": (inputs, 3 * hidden), "recurrent_kernel": (hidden, 3 * hidden),
                "input_bias": (3 * hidden,), "recurrent_bias": (3 * hidden,)}  # fmt: skip
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


def _zrn(stacked: np.ndarray) -> np.ndarray:
  """``[..., 3H]`` in jaxgru's gate order r, z, n -> ONNX's z, r, h."""
  r, z, n = np.split(stacked, 3, axis=-1)
  return np.concatenate([z, r, n], axis=-1)


def require_onnx():
  """Imports and returns the ``onnx`` package, an optional extra of jaxgru.

  Raises:
    ImportError: onnx is not installed; the message says ``pip install 'jaxgru[onnx]'``.
  """
  try:
    import onnx  # pylint: disable=g-import-not-at-top
  except ImportError as error:
    raise ImportError(f"jaxgru.export's ONNX functions need the onnx package: {ONNX_EXTRA}") from error
  return onnx


def onnx_gru_graph(
    layer, variables: Mapping | None = None, *, with_sequence_lens: bool = False, with_initial_h: bool = False,
    prefix: str = "gru/",
):  # fmt: skip
  """The ONNX graph of a GRU layer: its nodes, weights, inputs and outputs.

  Args:
    layer, variables: as :func:`to_onnx`.
    with_sequence_lens: the graph takes ``sequence_lens [B]`` int32.
    with_initial_h: the graph takes ``initial_h [L*D, B, H]``.
    prefix: prepended to the names of the weights and intermediate values,
      to keep them apart from those of a larger graph this one goes into.

  Returns:
    An ``onnx.GraphProto`` with inputs :data:`INPUTS` (and :data:`SEQUENCE_LENS`,
    :data:`INITIAL_H`) and outputs :data:`OUTPUTS`, :data:`FINAL_STATE`; batch
    and time are the dynamic dimensions ``"batch"`` and ``"time"``.

  Raises:
    as :func:`layer_spec`; ImportError without the onnx package.
  """
  onnx = require_onnx()
  from onnx import helper, numpy_helper  # pylint: disable=g-import-not-at-top

  spec = layer_spec(layer, variables)
  hidden, directions = spec.features, spec.num_directions
  nodes, weights = [], []

  def const(name: str, value: np.ndarray) -> str:
    weights.append(numpy_helper.from_array(np.ascontiguousarray(value), prefix + name))
    return prefix + name

  def node(op: str, inputs: Sequence[str], name: str, **attributes) -> str:
    nodes.append(helper.make_node(op, list(inputs), [prefix + name], name=prefix + name, **attributes))
    return prefix + name

  x = INPUTS if spec.time_major else node("Transpose", [INPUTS], "inputs_time_major", perm=[1, 0, 2])  # [T, B, I]
  lengths = SEQUENCE_LENS if with_sequence_lens else ""
  empty = None
  if with_sequence_lens and with_initial_h:  # ONNX Runtime: Y_h = 0 at length 0, jaxgru: the initial state
    empty = node("Equal", [SEQUENCE_LENS, const("zero_length", np.zeros((), np.int32))], "empty")  # [B]
    empty = node("Unsqueeze", [empty, const("state_axes", np.array([0, 2], np.int64))], "empty_1b1")  # [1, B, 1]
  gru_attributes = dict(
      hidden_size=hidden,
      direction="bidirectional" if directions == 2 else "forward",
      linear_before_reset=int(spec.reset_after),
  )
  if [a.name for a in spec.activations] != ["Sigmoid", "Tanh"]:  # the defaults stay implicit, for every runtime
    gru_attributes["activations"] = [a.name for a in spec.activations] * directions
    alphas = [a.alpha for a in spec.activations * directions if a.alpha is not None]
    betas = [a.beta for a in spec.activations * directions if a.beta is not None]
    if alphas:
      gru_attributes["activation_alpha"] = alphas
    if betas:
      gru_attributes["activation_beta"] = betas
  first_axis = const("first_axis", np.array([0], np.int64)) if with_initial_h else None
  # [T, B, D, H] -> [T, B, D*H]
  merge_directions = const("merge_directions", np.array([0, 0, directions * hidden], np.int64))
  finals = []
  for l, row in enumerate(spec.params):
    w = const(f"W_{l}", np.stack([_zrn(p["input_kernel"]).T for p in row]))  # [D, 3H, I_l]
    r = const(f"R_{l}", np.stack([_zrn(p["recurrent_kernel"]).T for p in row]))  # [D, 3H, H]
    b = ""
    if spec.use_bias:
      biases = [np.concatenate([_zrn(p["input_bias"]), _zrn(p["recurrent_bias"])]) for p in row]  # [Wb | Rb]
      b = const(f"B_{l}", np.stack(biases))  # [D, 6H]
    h0 = ""
    if with_initial_h:
      start = const(f"h0_start_{l}", np.array([l * directions], np.int64))
      end = const(f"h0_end_{l}", np.array([(l + 1) * directions], np.int64))
      h0 = node("Slice", [INITIAL_H, start, end, first_axis], f"initial_h_{l}")  # [D, B, H]
    y, y_h = prefix + f"Y_{l}", prefix + f"Y_h_{l}"
    gru_inputs = [x, w, r, b, lengths, h0]  # "" is an absent optional input
    nodes.append(helper.make_node("GRU", gru_inputs, [y, y_h], name=prefix + f"GRU_{l}", **gru_attributes))
    finals.append(y_h if empty is None else node("Where", [empty, h0, y_h], f"final_state_{l}"))  # [D, B, H]
    y = node("Transpose", [y], f"Y_{l}_tbdh", perm=[0, 2, 1, 3])  # [T, B, D, H]
    x = node("Reshape", [y, merge_directions], f"outputs_{l}")  # [T, B, D*H]
  perm = {} if spec.time_major else {"perm": [1, 0, 2]}
  nodes.append(helper.make_node("Transpose" if perm else "Identity", [x], [OUTPUTS], name=prefix + OUTPUTS, **perm))
  nodes.append(helper.make_node("Concat", finals, [FINAL_STATE], name=prefix + FINAL_STATE, axis=0))  # [L*D, B, H]

  float32, states = onnx.TensorProto.FLOAT, spec.num_layers * directions
  layout = ["time", "batch"] if spec.time_major else ["batch", "time"]
  inputs = [helper.make_tensor_value_info(INPUTS, float32, layout + [spec.input_features])]
  if with_sequence_lens:
    inputs.append(helper.make_tensor_value_info(SEQUENCE_LENS, onnx.TensorProto.INT32, ["batch"]))
  if with_initial_h:
    inputs.append(helper.make_tensor_value_info(INITIAL_H, float32, [states, "batch", hidden]))
  outputs = [
      helper.make_tensor_value_info(OUTPUTS, float32, layout + [directions * hidden]),
      helper.make_tensor_value_info(FINAL_STATE, float32, [states, "batch", hidden]),
  ]
  return helper.make_graph(nodes, "jaxgru_GRU", inputs, outputs, initializer=weights)


def onnx_model(graph, *, opset: int = DEFAULT_OPSET, metadata: Mapping[str, str] | None = None, doc: str = ""):
  """Wraps an ONNX graph into a checked model of ``opset``, with the lowest IR version that opset needs.

  Args:
    graph: an ``onnx.GraphProto`` (from :func:`onnx_gru_graph`, or a larger one).
    opset: the ONNX opset, from :data:`MIN_OPSET` to the newest the installed onnx knows.
    metadata: ``metadata_props`` of the model (what a reader needs: feature names, ...).
    doc: the model's ``doc_string``.

  Raises:
    ValueError: an opset out of range; onnx.checker.ValidationError: an invalid graph.
  """
  onnx = require_onnx()
  newest = onnx.defs.onnx_opset_version()
  if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
    raise ValueError(
        f"to_onnx opset must be an integer from {MIN_OPSET} (GRU-14) to {newest} (the installed onnx), got {opset!r}"
    )
  opsets = [onnx.helper.make_opsetid("", opset)]
  # The lowest IR version of the opset, so that older runtimes load the file too.
  model = onnx.helper.make_model(
      graph, opset_imports=opsets, ir_version=onnx.helper.find_min_ir_version_for(opsets),
      producer_name="jaxgru", doc_string=doc,
  )  # fmt: skip
  if metadata:
    onnx.helper.set_model_props(model, dict(metadata))
  onnx.checker.check_model(model, full_check=True)
  return model


def to_onnx(
    layer,
    variables: Mapping | None = None,
    *,
    path: str | os.PathLike | None = None,
    opset: int = DEFAULT_OPSET,
    force: bool = False,
    with_sequence_lens: bool = False,
    with_initial_h: bool = False,
):
  """Exports a GRU layer as an ONNX model built on ONNX's ``GRU`` operator.

  One ``GRU`` node per layer (direction ``forward`` or ``bidirectional``,
  ``linear_before_reset`` 1 for ``reset_after`` and 0 for ``reset_before``),
  ``Transpose`` and ``Reshape`` nodes between layers and for a batch-major
  layout; the graph computes in float32 and passes ``onnx.checker``.

  Args:
    layer: a :class:`jaxgru.GRU`, or a :class:`jaxgru.nnx.GRU` (then without ``variables``).
    variables: ``{"params": ...}`` of the linen layer, as returned by ``layer.init``.
    path: where to write the model (``.onnx``); ``None`` writes nothing. The
      folder must exist; the file is written to a temporary file in the same
      folder, then renamed, so a reader never sees half a model.
    opset: ONNX opset, :data:`DEFAULT_OPSET` (17) by default, at least
      :data:`MIN_OPSET` (14).
    force: overwrite an existing ``path``.
    with_sequence_lens: the model takes :data:`SEQUENCE_LENS` ``[B]`` int32
      lengths in ``[0, T]``, with jaxgru's padding rules (zero outputs at padded
      steps, the final state after the last valid step, the reverse direction
      from the last valid step).
    with_initial_h: the model takes :data:`INITIAL_H` ``[L*D, B, H]`` (zeros otherwise).

  Returns:
    The ``onnx.ModelProto``: input :data:`INPUTS` ``[B, T, I]`` (``[T, B, I]``
    when ``time_major``), outputs :data:`OUTPUTS` ``[B, T, D*H]`` (``[T, B, D*H]``)
    and :data:`FINAL_STATE` ``[L*D, B, H]``, as the layer returns them; batch and
    time are dynamic.

  Raises:
    TypeError, ValueError: as :func:`layer_spec`, or a bad ``opset``.
    FileNotFoundError, FileExistsError, IsADirectoryError: as :func:`check_output_path`,
      before anything is built or written.
    ImportError: without the onnx package (``pip install 'jaxgru[onnx]'``).
  """
  for name, value in (("force", force), ("with_sequence_lens", with_sequence_lens), ("with_initial_h", with_initial_h)):
    if not isinstance(value, bool):
      raise TypeError(f"to_onnx {name} must be True or False, got {value!r}")
  if path is not None:
    check_output_path(path, force=force)
  graph = onnx_gru_graph(layer, variables, with_sequence_lens=with_sequence_lens, with_initial_h=with_initial_h)
  model = onnx_model(graph, opset=opset, doc="jaxgru GRU layer; inputs, outputs and final_state in jaxgru's layout")
  if path is not None:
    write_file(path, model.SerializeToString(), force=force)
  return model


def check_output_path(path: str | os.PathLike, *, force: bool = False) -> str:
  """Checks that a file can be written at ``path``: its folder exists, and it does not unless ``force``.

  Returns:
    ``path`` as a string.

  Raises:
    TypeError: ``path`` is not a path.
    IsADirectoryError: ``path`` is a folder.
    FileNotFoundError: its folder does not exist.
    FileExistsError: it exists and ``force`` is false.
  """
  if not isinstance(path, (str, os.PathLike)):
    raise TypeError(f"path must be a file path (str or os.PathLike), got {type(path).__name__}")
  path = os.fspath(path)
  folder = os.path.dirname(os.path.abspath(path))
  if os.path.isdir(path):
    raise IsADirectoryError(f"path {path!r} is a folder; expected a file name in it")
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"path {path!r}: folder {folder} does not exist; create it first")
  if os.path.exists(path) and not force:
    raise FileExistsError(f"path {path!r} already exists; choose another path or pass force=True to overwrite it")
  return path


def write_file(path: str | os.PathLike, data: bytes, *, force: bool = False) -> None:
  """Writes ``data`` to ``path`` atomically: a temporary file in the same folder, then ``os.replace``.

  Raises:
    as :func:`check_output_path`.
  """
  path = check_output_path(path, force=force)
  handle, temporary = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=f".{os.path.basename(path)}.")
  try:
    with os.fdopen(handle, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(temporary, 0o644)  # mkstemp makes it 0o600; a model is read by others
    os.replace(temporary, path)
  except BaseException:
    os.unlink(temporary)
    raise


def to_stablehlo(
    fn: Callable,
    *args: Any,
    symbolic: Sequence[str | None] | None = None,
    path: str | os.PathLike | None = None,
    force: bool = False,
    platforms: Sequence[str] | None = None,
) -> jax.export.Exported:
  """Exports a JAX function as serialized StableHLO (:mod:`jax.export`), with symbolic dimensions.

  The function's constants (a model's parameters closed over) go into the
  module; another JAX program runs it with :func:`load_stablehlo` and
  ``exported.call(*args)``, without this Python code.

  Args:
    fn: the function (it is jitted; a ``jax.jit`` function is taken as is).
    *args: example arguments: arrays or ``jax.ShapeDtypeStruct`` s.
    symbolic: one shape per argument in :func:`jax.export.symbolic_shape`
      syntax, such as ``"b, t, 3"``, or ``None`` for the argument's own shape;
      names shared between arguments are the same dimension.
    path: where to write the serialized module; ``None`` writes nothing
      (folder must exist; atomic, as :func:`to_onnx`).
    force: overwrite an existing ``path``.
    platforms: the platforms to export for (``("cpu", "cuda")``); default the current backend.

  Returns:
    The ``jax.export.Exported``; ``exported.serialize()`` is what ``path`` holds.

  Raises:
    ValueError: ``symbolic`` does not have one entry per argument, or a shape
      whose rank or fixed sizes differ from the argument's.
    FileNotFoundError, FileExistsError, IsADirectoryError: as :func:`check_output_path`.

  Example:

  >>> import jax.numpy as jnp
  >>> exported = to_stablehlo(lambda x: jnp.cumsum(x, axis=1), jnp.ones((2, 5)), symbolic=["b, t"])
  >>> exported.in_avals
  (ShapedArray(float32[b,t]),)
  >>> exported.call(jnp.ones((3, 4)))[2]
  Array([1., 2., 3., 4.], dtype=float32)
  """
  if path is not None:
    check_output_path(path, force=force)
  args = [a if hasattr(a, "shape") and hasattr(a, "dtype") else np.asarray(a) for a in args]
  specs = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in args]
  if symbolic is not None:
    if isinstance(symbolic, str) or len(symbolic) != len(args):
      raise ValueError(f"to_stablehlo symbolic must hold one shape (or None) per argument, {len(args)}, got {symbolic!r}")
    scope = jax.export.SymbolicScope()
    for i, (shape, spec) in enumerate(zip(symbolic, specs)):
      if shape is None:
        continue
      dims = jax.export.symbolic_shape(shape, scope=scope)
      fixed_ok = all(not isinstance(d, int) or d == s for d, s in zip(dims, spec.shape))
      if len(dims) != len(spec.shape) or not fixed_ok:
        raise ValueError(f"to_stablehlo symbolic[{i}] = {shape!r} does not fit argument {i} of shape {spec.shape}")
      specs[i] = jax.ShapeDtypeStruct(dims, spec.dtype)
  exported = jax.export.export(jax.jit(fn), platforms=platforms)(*specs)
  if path is not None:
    write_file(path, bytes(exported.serialize()), force=force)
  return exported


def load_stablehlo(path: str | os.PathLike) -> jax.export.Exported:
  """Reads a module written by :func:`to_stablehlo`; run it with ``exported.call(*args)``.

  Raises:
    FileNotFoundError: no file at ``path``.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"no StableHLO module at {os.fspath(path)!r}; write one with jaxgru.export.to_stablehlo")
  with open(path, "rb") as f:
    return jax.export.deserialize(bytearray(f.read()))


__all__ = (
    "ACTIVATIONS",
    "DEFAULT_OPSET",
    "FINAL_STATE",
    "INITIAL_H",
    "INPUTS",
    "MIN_OPSET",
    "OUTPUTS",
    "SEQUENCE_LENS",
    "Activation",
    "LayerSpec",
    "check_output_path",
    "layer_spec",
    "load_stablehlo",
    "onnx_activation",
    "onnx_gru_graph",
    "onnx_model",
    "require_onnx",
    "to_onnx",
    "to_stablehlo",
    "write_file",
)
