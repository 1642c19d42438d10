"""The trained forecaster as one file: load in MW in, next-hour load in MW out (ONNX or StableHLO).

A day-ahead run's forecaster (the next day's quantiles) is written by the same :func:`export_forecaster`;
its inputs and graph are in :mod:`training.dayahead_export`.

``export_forecaster(workdir, "onnx")`` writes ``WORKDIR/forecaster.onnx``: the
run's min-max scaling of the inputs, its :class:`jaxgru.GRU` (ONNX's native
``GRU`` operator, through :func:`jaxgru.export.onnx_gru_graph`), the ReLU and
Dense head on the last step, and the unscaling of the forecast, as plain ONNX
nodes. ``"stablehlo"`` writes ``WORKDIR/forecaster.stablehlo`` through
:func:`jaxgru.export.to_stablehlo` (any model kind, the LSTM too), to run in
another JAX program with :func:`jaxgru.export.load_stablehlo`.

Both take ``features [B, T, I]`` float32, the run's input columns in their
original units (``feature_names`` in the model's metadata: the load in MW, hour
of day, day of week, ...) for ``T = lookback`` hours, with a dynamic batch, and
return ``load [B]`` float32, the forecast of the next hour in MW. The scaling is
that of the run's first file, which is what ``predict.py`` uses for the run's
own test part and for any file the run did not train on.

From ``python experiments/predict.py --workdir runs/energy_default --export onnx``.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

import jaxgru
from jaxgru import export
from training import dayahead_export
from training import inference

FORMATS = {"onnx": "forecaster.onnx", "stablehlo": "forecaster.stablehlo"}  # format -> default file in the run folder
FEATURES = "features"  # the input: [B, T, I] float32, original units
LOAD = "load"  # the output: [B] float32, MW


def default_path(workdir: str, fmt: str) -> str:
  """The file ``export_forecaster`` writes by default: ``WORKDIR/forecaster.onnx`` or ``.stablehlo``."""
  return os.path.join(workdir, FORMATS[_check_format(fmt)])


def _check_format(fmt: str) -> str:
  if fmt not in FORMATS:
    raise ValueError(f"unknown export format {fmt!r}; expected one of {sorted(FORMATS)}")
  return fmt


def _require_onnx():
  try:
    import onnx  # noqa: PLC0415 - an optional extra: pip install 'jaxgru[onnx]'
  except ImportError as error:
    raise ImportError("ONNX export of a run needs the onnx package: pip install 'jaxgru[onnx]'") from error
  return onnx


def metadata(run: inference.Run) -> dict[str, str]:
  """What a reader of the file needs: the input columns in order, the lookback and the scaler's file."""
  return {
    "feature_names": ",".join(run.scaling.feature_names),
    "lookback": str(run.scaling.lookback),
    "scaling_file": run.scaling.files[0],
    "checkpoint_step": str(run.step),
  }


def _scaler(run: inference.Run) -> tuple[np.ndarray, np.ndarray]:
  """``(min [I], range [I])`` float32 of the run's first file: ``scaled = (x - min) / range``."""
  return run.scaling.feature_min[0].astype(np.float32), run.scaling.feature_range[0].astype(np.float32)


def forecast_function(run: inference.Run):
  """The run's forecast as a JAX function: ``features [B, T, I]`` float32 (original units) -> ``load [B]`` float32 (MW)."""
  low, span = _scaler(run)
  params = run.variables["params"]

  def forecast(features):
    scaled = (features - low[None, None]) / span[None, None]  # [B, T, I], as training.scaling.Scaling.scale
    predictions = run.model.apply({"params": params}, scaled, deterministic=True)  # [B, 1]
    return predictions[:, 0] * span[0] + low[0]  # [B], as training.scaling.Scaling.unscale_load

  return forecast


def forecaster_onnx(
  run: inference.Run, *, opset: int = export.DEFAULT_OPSET, path: str | None = None, force: bool = False
):
  """The run's forecast as an ONNX model: scaling, the GRU, ``Dense(relu(h_T))`` and unscaling.

  ``path`` and ``force``: where to write it, as :func:`jaxgru.export.onnx_model` writes.

  The head re-expresses :class:`training.models.SequenceModel` in ONNX nodes
  (``Gather`` of the last step, ``Relu``, ``MatMul``, ``Add``); the tests hold it
  to :func:`training.inference.forecast`.

  Raises:
    ValueError: the run's model is not a GRU (ONNX's ``GRU`` operator exports
      only that; :func:`forecast_function` and StableHLO take any model).
  """
  onnx = _require_onnx()
  helper, numpy_helper = onnx.helper, onnx.numpy_helper

  if run.model.kind != "gru":
    raise ValueError(
      f"{run.workdir}: ONNX export needs a GRU model, this run has model.kind={run.model.kind!r}; "
      "use --export stablehlo"
    )
  params = run.variables["params"]
  gru = jaxgru.GRU(run.model.hidden, num_layers=run.model.num_layers)  # SequenceModel's backbone, at inference
  graph = export.onnx_gru_graph(gru, {"params": params["gru"]})
  low, span = _scaler(run)
  lookback, inputs = run.scaling.lookback, len(run.scaling.feature_names)
  weights = {
    "feature_min": low,
    "feature_range": span,
    "last_step": np.array(-1, np.int64),
    "head_kernel": np.asarray(params["head"]["kernel"]),
    "head_bias": np.asarray(params["head"]["bias"]),
    "load_range": span[:1],
    "load_min": low[:1],
    "flat": np.array([-1], np.int64),
  }
  node = helper.make_node
  before = [
    node("Sub", [FEATURES, "feature_min"], ["shifted"]),
    node("Div", ["shifted", "feature_range"], [export.INPUTS]),  # [B, T, I] scaled
  ]
  after = [
    node("Gather", [export.OUTPUTS, "last_step"], ["last_hidden"], axis=1),  # [B, H], hs[:, -1]
    node("Relu", ["last_hidden"], ["relu"]),
    node("MatMul", ["relu", "head_kernel"], ["head"]),
    node("Add", ["head", "head_bias"], ["scaled_load"]),  # [B, 1]
    node("Mul", ["scaled_load", "load_range"], ["load_offset"]),
    node("Add", ["load_offset", "load_min"], ["load_column"]),  # [B, 1] MW
    node("Reshape", ["load_column", "flat"], [LOAD]),  # [B]
  ]
  float32 = onnx.TensorProto.FLOAT
  graph = helper.make_graph(
    before + list(graph.node) + after,
    "jaxgru_forecaster",
    [helper.make_tensor_value_info(FEATURES, float32, ["batch", lookback, inputs])],
    [helper.make_tensor_value_info(LOAD, float32, ["batch"])],
    initializer=list(graph.initializer) + [numpy_helper.from_array(v, k) for k, v in weights.items()],
  )
  return export.onnx_model(
    graph,
    opset=opset,
    metadata=metadata(run),
    path=path,
    force=force,
    doc="next-hour load in MW from features [batch, lookback, I] in original units",
  )


def export_forecaster(workdir: str, fmt: str, *, path: str | None = None, force: bool = False) -> str:
  """Writes a finished energy run's forecaster as ONNX or StableHLO.

  Args:
    workdir: a finished energy run folder.
    fmt: ``"onnx"`` or ``"stablehlo"``.
    path: the file to write (default :func:`default_path`).
    force: overwrite an existing file.

  Returns:
    The path written.

  Raises:
    ValueError: an unknown format, or an LSTM run with ``"onnx"``.
    FileNotFoundError, FileExistsError, IsADirectoryError: a bad ``path``, before
      anything is written (``experiments/predict.py`` checks it before the run is loaded).
    training.inference.RunError: ``workdir`` is not a finished energy or day-ahead run.
  """
  _check_format(fmt)
  path = path or default_path(workdir, fmt)
  run = inference.load_run(workdir)
  if run.config.task.kind == "dayahead":
    if fmt == "onnx":
      _require_onnx()
      dayahead_export.forecaster_onnx(run, path=path, force=force)
    else:
      symbolic = dayahead_export.symbolic_shapes(run)
      example = dayahead_export.example_inputs(run)
      export.to_stablehlo(dayahead_export.forecast_function(run), *example, symbolic=symbolic, path=path, force=force)
    return path
  if fmt == "onnx":
    forecaster_onnx(run, path=path, force=force)  # jaxgru's writer: whole or not at all
  else:
    example = jax.ShapeDtypeStruct((1, run.scaling.lookback, len(run.scaling.feature_names)), jnp.float32)
    symbolic = f"batch, {run.scaling.lookback}, {len(run.scaling.feature_names)}"
    export.to_stablehlo(forecast_function(run), example, symbolic=[symbolic], path=path, force=force)
  return path
