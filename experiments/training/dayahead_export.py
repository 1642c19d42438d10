"""A day-ahead run's forecaster as one file: recent load and calendar in, the next day's quantiles out.

Both formats take two inputs, with a dynamic batch:

* ``load [B, T]`` float32: the load of the ``T = lookback`` hours before the issue, in its unit (MW);
* ``calendar [B, T + G + F, 10]`` float32: the :data:`training.dayahead.CALENDAR` columns of those hours,
  of the ``G`` gap hours and of the ``F`` target hours (:func:`training.dayahead.calendar_columns`;
  the holidays of the run's country are the model's metadata ``holidays``);

and return ``quantiles [B, F, Q]`` float32 in the load's unit, non-decreasing along ``Q``. The scaling
is that of the run's first file, as :mod:`training.dayahead_inference` uses it for any new file.

The ONNX graph re-expresses :class:`training.forecaster.DayAheadModel` in plain nodes around ONNX's
native ``GRU`` operator (:func:`jaxgru.export.onnx_gru_graph`): the window of
:func:`training.dayahead.assemble`, the encoder, the head (``direct``: ``Dense`` on ``relu(h_T)`` and the
targets' calendar; ``decoder``: a second ``GRU`` from the encoder's state), the highway on the median and
:func:`training.quantiles.noncrossing` (``Softplus``, ``CumSum``). The tests hold it to JAX.
"""

from __future__ import annotations

import numpy as np

import jaxgru
from jaxgru import export
from training import dayahead
from training import quantiles as quantiles_lib

LOAD = "load"  # input [B, T] float32, the load's unit
CALENDAR = "calendar"  # input [B, T + G + F, len(dayahead.CALENDAR)] float32
QUANTILES = "quantiles"  # output [B, F, Q] float32, the load's unit


def metadata(run) -> dict[str, str]:
  """What a reader of the file needs to build its inputs and read its output."""
  s = run.scaling
  return {
    "task": "dayahead",
    "lookback": str(s.lookback),
    "gap": str(s.gap),
    "horizon": str(s.horizon),
    "issue_hour": str(s.issue_hour),
    "quantiles": ",".join(f"{x:g}" for x in s.levels),
    "calendar_columns": ",".join(dayahead.CALENDAR),
    "holidays": s.holidays or "",
    "holidays_subdivision": s.holidays_subdivision or "",
    "scaling_file": s.files[0],
    "checkpoint_step": str(run.step),
  }


def example_inputs(run) -> tuple[np.ndarray, np.ndarray]:
  """Zero inputs of batch 1 in the exported shapes: ``(load [1, T], calendar [1, T + G + F, 10])``."""
  s = run.scaling
  return np.zeros((1, s.lookback), np.float32), np.zeros(
    (1, s.lookback + s.gap + s.horizon, len(dayahead.CALENDAR)), np.float32
  )


def forecast_function(run):
  """The run's forecast as a JAX function: ``(load [B, T], calendar [B, T + G + F, 10]) -> quantiles [B, F, Q]``."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  s, params = run.scaling, run.variables["params"]
  offset, scale = np.float32(s.load_offset[0]), np.float32(s.load_scale[0])

  def forecast(load, calendar):
    inputs = dayahead.assemble((load - offset) / scale, calendar, xp=jnp)  # [B, T + G + F, I]
    q = run.model.apply({"params": params}, inputs, deterministic=True)  # [B, F * Q]
    return q.reshape(-1, s.horizon, len(s.levels)) * scale + offset

  return forecast


def symbolic_shapes(run) -> list[str]:
  """The inputs' shapes for :func:`jaxgru.export.to_stablehlo`, with a symbolic batch."""
  s = run.scaling
  return [f"batch, {s.lookback}", f"batch, {s.lookback + s.gap + s.horizon}, {len(dayahead.CALENDAR)}"]


def _rename(nodes, names: dict[str, str]):
  """``nodes`` with their inputs and outputs renamed (the fixed names of a jaxgru GRU graph, kept apart)."""
  for n in nodes:
    n.input[:] = [names.get(x, x) for x in n.input]
    n.output[:] = [names.get(x, x) for x in n.output]
  return list(nodes)


def forecaster_onnx(run, *, opset: int = export.DEFAULT_OPSET, path: str | None = None, force: bool = False):
  """The run's forecaster as an ONNX model (see the module docstring); ``path``, ``force`` as :func:`jaxgru.export.onnx_model`."""
  import onnx  # pylint: disable=g-import-not-at-top  # noqa: PLC0415 - the optional extra, checked by the caller

  helper, numpy_helper = onnx.helper, onnx.numpy_helper
  s, model, params = run.scaling, run.model, run.variables["params"]
  t, g, f, q = s.lookback, s.gap, s.horizon, len(s.levels)
  m = quantiles_lib.median_index(s.levels)
  weights = {}

  def const(name, value):
    weights[name] = np.asarray(value)
    return name

  def i64(*values):
    return np.array(values, np.int64)

  nodes = []

  def node(op, inputs, output, **attributes):
    nodes.append(helper.make_node(op, list(inputs), [output], name=output, **attributes))
    return output

  def rows(x, start, stop, axis):  # x[..., start:stop, ...] along axis
    return node(
      "Slice",
      [x, const(f"{x}_{start}", i64(start)), const(f"{x}_{stop}", i64(stop)), const(f"axis_{axis}", i64(axis))],
      f"{x}_{start}_{stop}",
    )

  offset, scale = np.float32(s.load_offset[0]), np.float32(s.load_scale[0])
  scaled = node(
    "Div",
    [node("Sub", [LOAD, const("load_offset", offset)], "load_shifted"), const("load_scale", scale)],
    "scaled_load",
  )  # [B, T]
  past = node("Unsqueeze", [scaled, const("last_axis", i64(2))], "past_load")  # [B, T, 1]
  known = node(
    "Add", [node("Mul", [past, const("zero", np.float32(0))], "zeros"), const("one", np.float32(1))], "known"
  )
  node("Concat", [past, known, rows(CALENDAR, 0, t, 1)], "encoder_inputs", axis=2)  # [B, T, 2 + C]

  def gru(name, **options):
    layer = jaxgru.GRU(model.hidden, num_layers=model.num_layers)
    graph = export.onnx_gru_graph(layer, {"params": params[name]}, prefix=f"{name}/", **options)
    for w in graph.initializer:
      weights[w.name] = numpy_helper.to_array(w)
    io = {export.INPUTS: f"{name}_inputs", export.OUTPUTS: f"{name}_outputs", export.FINAL_STATE: f"{name}_state"}
    return graph.node, io

  encoder, io = gru("encoder")
  nodes.extend(_rename(encoder, io))
  dense = params["head"]
  if model.head == "direct":
    last = node(
      "Relu",
      [node("Gather", ["encoder_outputs", const("last_step", np.array(-1, np.int64))], "last_hidden", axis=1)],
      "relu",
    )
    targets = node("Flatten", [rows(CALENDAR, t + g, t + g + f, 1)], "target_calendar", axis=1)  # [B, F * C]
    features = node("Concat", [last, targets], "head_features", axis=1)
    flat = node(
      "Add",
      [
        node("MatMul", [features, const("head_kernel", dense["kernel"])], "head_product"),
        const("head_bias", dense["bias"]),
      ],
      "head_flat",
    )
    raw = node("Reshape", [flat, const("lead_quantile", i64(0, f, q))], "raw")  # [B, F, Q]
  else:
    nodes.append(
      helper.make_node("Identity", [rows(CALENDAR, t, t + g + f, 1)], ["decoder_inputs"], name="decoder_inputs")
    )
    decoder, io = gru("decoder", with_initial_h=True)
    nodes.extend(_rename(decoder, {**io, export.INITIAL_H: "encoder_state"}))
    hidden = node("Relu", [rows("decoder_outputs", g, g + f, 1)], "decoder_relu")  # [B, F, H]
    raw = node(
      "Add",
      [
        node("MatMul", [hidden, const("head_kernel", dense["kernel"])], "head_product"),
        const("head_bias", dense["bias"]),
      ],
      "raw",
    )
  if model.highway:
    hw = params["highway"]
    lags = rows(scaled, t - model.highway, t, 1)  # [B, K]
    linear = node(
      "Add",
      [
        node("MatMul", [lags, const("highway_kernel", hw["kernel"])], "highway_product"),
        const("highway_bias", hw["bias"]),
      ],
      "highway",
    )
    onto_median = const("median_one_hot", np.eye(q, dtype=np.float32)[m])  # [Q]
    spread = node(
      "Mul", [node("Unsqueeze", [linear, const("last_axis", i64(2))], "highway_column"), onto_median], "highway_median"
    )
    raw = node("Add", [raw, spread], "raw_with_highway")
  center = rows(raw, m, m + 1, 2)  # [B, F, 1]
  parts = [center]
  if m > 0:
    steps = node(
      "CumSum",
      [node("Softplus", [rows(raw, 0, m, 2)], "below_steps"), const("axis_2_scalar", np.array(2, np.int64))],
      "below_sums",
      reverse=1,
    )
    parts.insert(0, node("Sub", [center, steps], "below"))
  if m < q - 1:
    steps = node(
      "CumSum",
      [node("Softplus", [rows(raw, m + 1, q, 2)], "above_steps"), const("axis_2_scalar", np.array(2, np.int64))],
      "above_sums",
    )
    parts.append(node("Add", [center, steps], "above"))
  ordered = node("Concat", parts, "scaled_quantiles", axis=2) if len(parts) > 1 else center
  node(
    "Add",
    [node("Mul", [ordered, const("load_scale", scale)], "quantile_offsets"), const("load_offset", offset)],
    QUANTILES,
  )

  float32 = onnx.TensorProto.FLOAT
  graph = helper.make_graph(
    nodes,
    "jaxgru_dayahead_forecaster",
    [
      helper.make_tensor_value_info(LOAD, float32, ["batch", t]),
      helper.make_tensor_value_info(CALENDAR, float32, ["batch", t + g + f, len(dayahead.CALENDAR)]),
    ],
    [helper.make_tensor_value_info(QUANTILES, float32, ["batch", f, q])],
    initializer=[numpy_helper.from_array(np.array(v, order="C"), k) for k, v in weights.items()],
  )
  return export.onnx_model(
    graph,
    opset=opset,
    metadata=metadata(run),
    path=path,
    force=force,
    doc=f"the next day's quantiles [batch, {f}, {q}] from load [batch, {t}] and calendar [batch, {t + g + f}, 10]",
  )
