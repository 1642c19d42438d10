"""Export of a jaxgru layer: to ONNX's native ``GRU`` operator and to StableHLO through ``jax.export``.

This module holds only the public names; the implementation is in ``jaxgru._src.export_onnx``,
``jaxgru._src.export_stablehlo`` and ``jaxgru._src.output_files``.
"""

from jaxgru._src.export_onnx import DEFAULT_OPSET as DEFAULT_OPSET
from jaxgru._src.export_onnx import FINAL_STATE as FINAL_STATE
from jaxgru._src.export_onnx import INITIAL_H as INITIAL_H
from jaxgru._src.export_onnx import INPUTS as INPUTS
from jaxgru._src.export_onnx import OUTPUTS as OUTPUTS
from jaxgru._src.export_onnx import SEQUENCE_LENS as SEQUENCE_LENS
from jaxgru._src.export_onnx import onnx_gru_graph as onnx_gru_graph
from jaxgru._src.export_onnx import onnx_model as onnx_model
from jaxgru._src.export_onnx import to_onnx as to_onnx
from jaxgru._src.export_stablehlo import load_stablehlo as load_stablehlo
from jaxgru._src.export_stablehlo import to_stablehlo as to_stablehlo

__all__ = (
  "DEFAULT_OPSET",
  "FINAL_STATE",
  "INITIAL_H",
  "INPUTS",
  "OUTPUTS",
  "SEQUENCE_LENS",
  "load_stablehlo",
  "onnx_gru_graph",
  "onnx_model",
  "to_onnx",
  "to_stablehlo",
)
