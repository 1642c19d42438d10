"""Shared pieces of the benchmark harness tests: the shipped configs, tiny overrides and the entry point."""

import importlib.util
import pathlib

import benchmarking

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "bench"
TINY = ["shapes=[[2,5,3,4]]", "results_dir=unused"]
LAYER_MODES = {benchmarking.Mode.FORWARD, benchmarking.Mode.FORWARD_BACKWARD}


def load_entry_point():
  """experiments/benchmark.py imported as a module (its ``main`` and ``output_dir``)."""
  spec = importlib.util.spec_from_file_location("benchmark_entry_point", ROOT / "experiments" / "benchmark.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module
