"""Runs a benchmark config: per case, check every row against the reference, then time them interleaved."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable

import jax

from benchmarking import check as check_lib
from benchmarking import registry
from benchmarking import results as results_lib
from benchmarking import roofline
from benchmarking import timing
from benchmarking.config import BenchConfig
from benchmarking.problem import Problem
from benchmarking.problem import make_problem

Log = Callable[[str], None]


def log_to_stderr(line: str) -> None:
  """The default progress sink: one line to stderr, flushed."""
  print(line, file=sys.stderr, flush=True)


def _prepare_row(name: str, problem: Problem, mode: registry.Mode, reference: dict, config: BenchConfig, log: Log):
  """Sets a row up, runs it once (for JAX: compile) and checks it; returns (row, runner or None)."""
  peer = registry.get_peer(name)
  if mode not in peer.modes:
    log(f"    {name:<22} skipped: no {mode.value} model")
    return results_lib.RowResult(
      name, "skipped", f"no {mode.value} model (modes: {', '.join(m.value for m in peer.modes)})"
    ), None
  missing = peer.missing()
  if missing:
    log(f"    {name:<22} skipped: {', '.join(missing)} not importable")
    return results_lib.RowResult(name, "skipped", f"{', '.join(missing)} not importable"), None
  try:
    runner = peer.factory(problem, mode)
    first_call_s, result = timing.time_call(runner.call)
    produced = runner.to_numpy(runner.check() if runner.check is not None else result)
    memory = runner.memory_bytes() if runner.memory_bytes else None
  except Exception as e:  # a row that cannot run here (e.g. a GPU-only kernel) is reported, not fatal
    message = f"{type(e).__name__}: {e}".splitlines()[0][:300]
    log(f"    {name:<22} ERROR {message}")
    return results_lib.RowResult(name, "error", message), None
  tol = config.tolerances[problem.dtype]
  if mode is registry.Mode.TRAIN_STEP and "loss" in produced:
    # Flax cannot give PyTorch's two separate biases it folds into one (benchmarking.train_step).
    reference = {k: v for k, v in reference.items() if k in produced}
  verdict = check_lib.compare(produced, reference, atol=tol.atol, rtol=tol.rtol)
  row = results_lib.RowResult(
    name,
    "ok" if verdict.ok else "mismatch",
    verdict.message,
    runner.framework,
    verdict.max_abs_diff,
    verdict.diffs,
    first_call_s,
    memory_bytes=memory,
  )
  log(
    f"    {name:<22} first call {first_call_s:7.3f} s   max|diff| {verdict.max_abs_diff:.2e}   "
    + ("ok" if verdict.ok else verdict.message)
  )
  return row, (runner if verdict.ok else None)


def run_case(
  problem: Problem, mode: registry.Mode, names, references: dict, config: BenchConfig, log: Log = log_to_stderr
) -> results_lib.CaseResult:
  """Checks and times the rows ``names`` on one problem and mode, interleaved.

  Args:
    problem: the shared weights and data.
    mode: what each call computes.
    names: registered peer names.
    references: ``{model: reference result}`` for the models of the rows that have this mode.
    config: repeats, warm-up and tolerances.
    log: progress sink.

  Returns:
    The :class:`~benchmarking.results.CaseResult`. Rows failing the
    equality check, raising, or missing a dependency keep their status and
    are left out of the timing.
  """
  rows, runners = {}, {}
  for name in names:
    reference = references.get(registry.get_peer(name).model)  # None for a row without this mode
    rows[name], runner = _prepare_row(name, problem, mode, reference, config, log)
    if runner is not None:
      runners[name] = runner
  if runners:
    samples = timing.time_interleaved(
      {n: r.call for n, r in runners.items()}, repeats=config.repeats, warmup=config.warmup
    )
    for name, times in samples.items():
      stats = timing.summarize(times)
      rows[name] = dataclasses.replace(
        rows[name], times_s=tuple(times), stats=stats, tokens_per_s=mode.tokens(problem.shape) / stats.median
      )
    log("    median ms: " + ", ".join(f"{n} {rows[n].stats.median * 1e3:.2f}" for n in samples))
  rooflines = []
  for name in (n for n in config.roofline if n in runners):
    try:
      found = roofline.analyze(
        name, runners[name], rows[name].stats.median, repeats=config.repeats, xla_flags=config.roofline_xla_flags
      )
    except (ValueError, RuntimeError) as e:  # the timed rows are kept: one line says why this roofline is missing
      log(f"    roofline {name}: not measured: {e}")
      continue
    rooflines.append(found)
    log(
      f"    roofline {name}: {found.flops / 1e9:.2f} GFLOP in products, {found.products_s * 1e3:.2f} ms inside,"
      f" floor {found.floor_s * 1e3:.2f} ms; the call x{found.step_s / found.floor_s:.2f} the floor"
    )
  baselines = registry.baselines(mode)
  return results_lib.CaseResult(
    problem.shape,
    problem.dtype,
    mode.value,
    problem.num_layers,
    tuple(results_lib.with_ratios([rows[n] for n in names], baselines)),
    problem.bidirectional,
    baselines,
    tuple(rooflines),
  )


def reference_for(model: str, problem: Problem, mode: registry.Mode, cache: dict) -> dict:
  """The model's reference result, computed once per problem for both modes.

  The forward+backward reference includes the outputs, so the forward case
  reuses it instead of compiling a second reference.
  """
  key = (problem.shape, problem.dtype, problem.num_layers, problem.bidirectional, problem.seed)
  if key not in cache:
    cache.clear()  # keeps only the current problem's references alive
    cache[key] = {}
  if mode not in (registry.Mode.FORWARD, registry.Mode.FORWARD_BACKWARD):  # a model around the GRU: its own
    if (model, mode) not in cache[key]:
      cache[key][(model, mode)] = dict(registry.get_reference(model)(problem, mode))
    return cache[key][(model, mode)]
  if model not in cache[key]:
    cache[key][model] = dict(registry.get_reference(model)(problem, registry.Mode.FORWARD_BACKWARD))
  full = cache[key][model]
  return full if mode is registry.Mode.FORWARD_BACKWARD else {"outputs": full["outputs"]}


def run_benchmark(config: BenchConfig, *, log: Log = log_to_stderr) -> results_lib.Report:
  """Runs every (shape, dtype, mode) of ``config``; writes nothing.

  Args:
    config: a validated :class:`~benchmarking.config.BenchConfig`.
    log: progress sink, one line per step.

  Returns:
    The :class:`~benchmarking.results.Report`.
  """
  if config.torch_threads is not None and not registry.get_peer("torch").missing():
    import torch  # noqa: PLC0415  (optional)

    torch.set_num_threads(config.torch_threads)
  names = config.implementations.selected()
  skipped = [n for n in config.roofline if n not in names]
  if skipped:
    log(f"roofline: {', '.join(skipped)} not among this run's rows; no roofline for them")
  env = results_lib.environment()
  log(f"benchmark on {env['jax_backend']} ({env['jax_device']}); rows: {', '.join(names)}")
  specs = [(s, d, m) for s in config.shapes for d in config.dtypes for m in config.modes]
  start, cases, cache = time.perf_counter(), [], {}
  for index, (shape, dtype, mode) in enumerate(specs, 1):
    problem = make_problem(
      shape, dtype, num_layers=config.num_layers, bidirectional=config.bidirectional, seed=config.seed
    )
    log(f"[{index}/{len(specs)} | {time.perf_counter() - start:6.1f} s] B,T,I,H={problem.label} {dtype} {mode.value}")
    models = sorted({registry.get_peer(n).model for n in names if mode in registry.get_peer(n).modes})
    references = {m: reference_for(m, problem, mode, cache) for m in models}
    cases.append(run_case(problem, mode, names, references, config, log))
  wall = time.perf_counter() - start
  log(f"done in {wall:.1f} s")
  stats = jax.devices()[0].memory_stats()
  if stats and "peak_bytes_in_use" in stats:
    env["device_peak_bytes_in_use"] = stats["peak_bytes_in_use"]  # process-wide, all rows together
  return results_lib.Report(env, config.model_dump(mode="json"), wall, tuple(cases))
