"""Side-by-side GRU benchmark: ``jaxgru.GRU`` per implementation against Flax, PyTorch and Equinox.

Run it with ``python experiments/benchmark.py --config configs/bench/cpu.yaml``.
Per (shape, dtype, mode) every row is run once, checked against a float32
reference (a row that differs is reported and never timed), then all rows are
timed round-robin; see :func:`run_benchmark`. Rows are registered peers
(:func:`register_peer`), so a new implementation is one small factory function.
"""

from benchmarking.check import CheckResult
from benchmarking.check import compare
from benchmarking.config import BenchConfig
from benchmarking.config import DeviceError
from benchmarking.config import for_this_machine
from benchmarking.config import load
from benchmarking.output import OutputError
from benchmarking.output import claim_empty_dir
from benchmarking.output import timestamped_dir
from benchmarking.peers import jax_runner
from benchmarking.problem import Problem
from benchmarking.problem import case_label
from benchmarking.problem import make_problem
from benchmarking.registry import Mode
from benchmarking.registry import Runner
from benchmarking.registry import get_peer
from benchmarking.registry import peer_names
from benchmarking.registry import register_peer
from benchmarking.registry import register_reference
from benchmarking.registry import unregister_peer
from benchmarking.report import chart
from benchmarking.report import markdown
from benchmarking.report import markdown_tables
from benchmarking.report import to_json
from benchmarking.report import write_all
from benchmarking.results import CaseResult
from benchmarking.results import Report
from benchmarking.results import RowResult
from benchmarking.run import run_benchmark
from benchmarking.run import run_case
from benchmarking.timing import Stats
from benchmarking.timing import summarize
from benchmarking.timing import time_interleaved

__all__ = (
  "BenchConfig",
  "CaseResult",
  "CheckResult",
  "DeviceError",
  "Mode",
  "OutputError",
  "Problem",
  "Report",
  "RowResult",
  "Runner",
  "Stats",
  "case_label",
  "chart",
  "claim_empty_dir",
  "compare",
  "for_this_machine",
  "get_peer",
  "jax_runner",
  "load",
  "make_problem",
  "markdown",
  "markdown_tables",
  "peer_names",
  "register_peer",
  "register_reference",
  "run_benchmark",
  "run_case",
  "summarize",
  "time_interleaved",
  "timestamped_dir",
  "to_json",
  "unregister_peer",
  "write_all",
)
