r"""A trained GRU out of Python as ONNX, with ONNX's native ``GRU`` operator.

:func:`to_onnx` maps a :class:`jaxgru.GRU` (with its variables) or a
:class:`jaxgru.nnx.GRU` onto ONNX's ``GRU`` operator, one node per layer,
which ONNX Runtime runs as one fused kernel. :func:`onnx_gru_graph` gives the
same nodes as a graph to build into a larger model (a forecaster's scaling and
head around the GRU). StableHLO is in :mod:`jaxgru._src.export_stablehlo`.

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
from collections.abc import Mapping
from collections.abc import Sequence

import numpy as np

from jaxgru._src.onnx_spec import layer_spec
from jaxgru._src.output_files import check_output_path
from jaxgru._src.output_files import write_file

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
  layer,
  variables: Mapping | None = None,
  *,
  with_sequence_lens: bool = False,
  with_initial_h: bool = False,
  prefix: str = "gru/",
):
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
  from onnx import helper  # pylint: disable=g-import-not-at-top
  from onnx import numpy_helper  # pylint: disable=g-import-not-at-top

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


def onnx_model(
  graph,
  *,
  opset: int = DEFAULT_OPSET,
  metadata: Mapping[str, str] | None = None,
  doc: str = "",
  path: str | os.PathLike | None = None,
  force: bool = False,
):
  """Wraps an ONNX graph into a checked model of ``opset``, with the lowest IR version that opset needs.

  Args:
    graph: an ``onnx.GraphProto`` (from :func:`onnx_gru_graph`, or a larger one).
    opset: the ONNX opset, from :data:`MIN_OPSET` to the newest the installed onnx knows.
    metadata: ``metadata_props`` of the model (what a reader needs: feature names, ...).
    doc: the model's ``doc_string``.
    path: where to write the model, as :func:`to_onnx` writes it (whole or not
      at all); ``None`` writes nothing.
    force: overwrite an existing ``path``.

  Returns:
    The ``onnx.ModelProto``.

  Raises:
    ValueError: an opset out of range; onnx.checker.ValidationError: an invalid graph.
    FileNotFoundError, FileExistsError, IsADirectoryError: a bad ``path`` (its
      folder is missing, it is a folder, or it exists without ``force``), before
      anything is built or written.
  """
  if not isinstance(force, bool):
    raise TypeError(f"onnx_model force must be True or False, got {force!r}")
  if path is not None:
    check_output_path(path, force=force)
  onnx = require_onnx()
  newest = onnx.defs.onnx_opset_version()
  if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
    raise ValueError(
      f"to_onnx opset must be an integer from {MIN_OPSET} (GRU-14) to {newest} (the installed onnx), got {opset!r}"
    )
  opsets = [onnx.helper.make_opsetid("", opset)]
  # The lowest IR version of the opset, so that older runtimes load the file too.
  model = onnx.helper.make_model(
    graph,
    opset_imports=opsets,
    ir_version=onnx.helper.find_min_ir_version_for(opsets),
    producer_name="jaxgru",
    doc_string=doc,
  )
  if metadata:
    onnx.helper.set_model_props(model, dict(metadata))
  onnx.checker.check_model(model, full_check=True)
  if path is not None:
    write_file(path, model.SerializeToString(), force=force)
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
    FileNotFoundError, FileExistsError, IsADirectoryError: a bad ``path`` (as
      :func:`onnx_model`), before anything is built or written.
    ImportError: without the onnx package (``pip install 'jaxgru[onnx]'``).
  """
  for name, value in (("force", force), ("with_sequence_lens", with_sequence_lens), ("with_initial_h", with_initial_h)):
    if not isinstance(value, bool):
      raise TypeError(f"to_onnx {name} must be True or False, got {value!r}")
  if path is not None:
    check_output_path(path, force=force)
  graph = onnx_gru_graph(layer, variables, with_sequence_lens=with_sequence_lens, with_initial_h=with_initial_h)
  doc = "jaxgru GRU layer; inputs, outputs and final_state in jaxgru's layout"
  return onnx_model(graph, opset=opset, doc=doc, path=path, force=force)
