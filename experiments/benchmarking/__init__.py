"""Side-by-side GRU benchmark: ``jaxgru.GRU`` per implementation against Flax, PyTorch and Equinox.

Run it with ``python experiments/benchmark.py --config configs/bench/cpu.yaml``.
Per (shape, dtype, mode) every row is run once, checked against a float32
reference (a row that differs is reported and never timed), then all rows are
timed round-robin; see :func:`run_benchmark`. Rows are registered peers
(:func:`register_peer`), so a new implementation is one small factory function.
"""

from benchmarking.check import CheckResult, compare
from benchmarking.config import BenchConfig, DeviceError, for_this_machine, load
from benchmarking.output import OutputError, claim_empty_dir, timestamped_dir
from benchmarking.peers import jax_runner
from benchmarking.problem import Problem, case_label, make_problem
from benchmarking.registry import Mode, Runner, get_peer, peer_names, register_peer, register_reference, unregister_peer
from benchmarking.report import chart, markdown, markdown_tables, to_json, write_all
from benchmarking.results import CaseResult, Report, RowResult
from benchmarking.run import run_benchmark, run_case
from benchmarking.timing import Stats, summarize, time_interleaved

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
