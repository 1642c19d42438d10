"""The prepared GPU check: correctness against float64, layer timings, a training step and the post's experiment.

:func:`run` does the parts of a :class:`benchmarking.gpu_plans.Plan` in order, each
inside its share of a time budget, and rewrites the report after every part, so a
run stopped from outside still leaves what it measured. Parts:

1. ``environment``: device, driver, versions, the command
   (:func:`benchmarking.gpu_environment.environment`).
2. ``accuracy``: every ``jaxgru.Implementation`` (``auto`` aside) in float32 and
   bfloat16 against float64 (:mod:`benchmarking.accuracy`).
3. ``layers``: forward and forward+backward of ``jaxgru.GRU`` per implementation,
   ``flax.linen.RNN(GRUCell)`` and ``torch.nn.GRU``, interleaved on the same weights
   (:func:`benchmarking.run_case`), at KernelBench's, the post's and long shapes.
4. ``train_step``: one Adam step of the FloydHub post's model per row
   (:mod:`benchmarking.train_step`).
5. ``energy``: the post's GRU against its LSTM on the real load data, several seeds,
   the post's 5 epochs and a longer schedule (:func:`training.trainer.train_and_evaluate`).

Then a proposal for ``"auto"`` on a GPU (:func:`benchmarking.gpu_analysis.propose_gpu_auto`).
Files written into the output folder (at most 8): :data:`FILES`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from collections.abc import Sequence

from benchmarking import accuracy
from benchmarking import config as config_lib
from benchmarking import gpu_report
from benchmarking import registry
from benchmarking import report as report_lib
from benchmarking import results as results_lib
from benchmarking.gpu_analysis import goals
from benchmarking.gpu_analysis import propose_gpu_auto
from benchmarking.gpu_environment import environment
from benchmarking.gpu_plans import REPO
from benchmarking.gpu_plans import Plan
from benchmarking.problem import make_problem
from benchmarking.run import reference_for
from benchmarking.run import run_case
from training import config_files

FILES = {
  "report": "gpu_check.md",  # everything, readable
  "data": "gpu_check.json",  # everything, every timed call
  "log": "gpu_check.log",  # the progress lines
  "chart": "tokens_per_s.png",  # layer and training-step throughput
  "forecast": "energy_forecast.png",  # one test week: actual load, GRU, LSTM
  "proposal": "gpu_auto.json",  # what "auto" should pick on this GPU, per H
}


# --- the parts -----------------------------------------------------------------------------------


class Clock:
  """The run's time budget: each part may use its share plus what earlier parts left."""

  def __init__(self, plan: Plan):
    self.plan, self.start = plan, time.perf_counter()
    self.order = list(plan.shares)

  def elapsed(self) -> float:
    return time.perf_counter() - self.start

  def part_deadline(self, part: str) -> float:
    """Seconds since the start by which ``part`` must stop starting new work."""
    later = sum(self.plan.shares[p] for p in self.order[self.order.index(part) + 1 :])
    return self.plan.budget_s * (1.0 - later)

  def left(self, part: str) -> float:
    return self.part_deadline(part) - self.elapsed()


def run_accuracy(plan: Plan, clock: Clock, log: Callable[[str], None]) -> list[dict]:
  """Part 2: one :func:`benchmarking.accuracy.check` per (implementation, dtype), each on fresh data."""
  out = []
  for index, (implementation, dtype) in enumerate(plan.accuracy_pairs):
    if clock.left("accuracy") <= 0:
      out.append({"implementation": implementation, "dtype": dtype, "status": "not run", "message": "time budget"})
      log(f"  accuracy {implementation:<20} {dtype:<9} not run: time budget")
      continue
    r = accuracy.check(
      implementation, dtype, shape=plan.accuracy_shape, num_layers=plan.accuracy_layers, seed=100 + index
    )
    out.append(r._asdict())
    log(
      f"  accuracy {implementation:<20} {dtype:<9} {r.status:<8} worst {r.worst or '-'} {r.worst_error:.2e} "
      f"(tolerance {r.tolerance:.0e}), {r.seconds:.1f} s {r.message if r.status != 'ok' else ''}"
    )
  return out


def _bench_config(rows: Sequence[str], tolerances: dict | None = None, *, repeats: int = 10, warmup: int = 2):
  data = {
    "shapes": [[1, 1, 1, 1]],
    "repeats": repeats,
    "warmup": warmup,
    "results_dir": "unused",
    "implementations": {"include": list(rows)},
  }
  gpu = config_lib.load(os.path.join(REPO, "configs", "bench", "gpu.yaml"))
  data["tolerances"] = tolerances or {k: v.model_dump() for k, v in gpu.tolerances.items()}
  return config_files.validate(config_lib.BenchConfig, data, "gpu_check")


def run_layers(plan: Plan, clock: Clock, log: Callable[[str], None]) -> tuple[list, list]:
  """Part 3: per :class:`~benchmarking.gpu_plans.LayerCase`, forward then forward+backward, rows interleaved.

  Rows are checked with gpu.yaml's tolerances.
  """
  config = _bench_config(plan.layer_rows, warmup=0 if plan.name == "smoke" else 2)
  cases, skipped, longest = [], [], 0.0
  for case in plan.layer_cases:
    if clock.left("layers") < longest:  # the next case might not fit: keep the time for the later parts
      skipped.append(dataclasses.asdict(case))
      log(f"  layers {case.name} {case.dtype}: not run (time budget)")
      continue
    started = time.perf_counter()
    problem = make_problem(case.shape, case.dtype, num_layers=case.num_layers, bidirectional=case.bidirectional)
    log(f"  layers {case.name} {problem.label} {case.dtype} [{clock.elapsed():.0f} s]")
    cache: dict = {}
    for mode in (registry.Mode.FORWARD, registry.Mode.FORWARD_BACKWARD):
      references = {"gru": reference_for("gru", problem, mode, cache)}
      cases.append(run_case(problem, mode, plan.layer_rows, references, config, log=log))
    longest = max(longest, time.perf_counter() - started)
  return cases, skipped


# Adam's first step moves every parameter by about the learning rate (1e-3) along the sign of its
# gradient; where TF32 rounding flips the sign of a near-zero gradient the parameter lands 2e-3 away.
# The gradients themselves are checked tightly in the accuracy part.
TRAIN_STEP_TOLERANCE = {"float32": {"atol": 2.5e-3, "rtol": 0.0}}


def run_train_step(plan: Plan, clock: Clock, log: Callable[[str], None]) -> list:
  """Part 4: one Adam step of the post's model, every row interleaved (:mod:`benchmarking.train_step`)."""
  if clock.left("train_step") <= 0:
    log("  train_step: not run (time budget)")
    return []
  config = _bench_config(plan.train_rows, TRAIN_STEP_TOLERANCE, warmup=0 if plan.name == "smoke" else 1)
  problem = make_problem(plan.train_shape, "float32", num_layers=plan.train_layers)
  mode = registry.Mode.TRAIN_STEP
  log(f"  train_step {problem.label} float32 [{clock.elapsed():.0f} s]")
  references = {"gru": reference_for("gru", problem, mode, {})}
  return [run_case(problem, mode, plan.train_rows, references, config, log=log)]


def run_energy(plan: Plan, clock: Clock, log: Callable[[str], None], workdir: str) -> dict:
  """Part 5: the post's GRU and LSTM on the real load data, seeds alternating, as long as the budget allows.

  One run per (model, seed) with ``long_epochs`` epochs at the post's constant
  learning rate: its evaluation after ``post_epochs`` epochs is the post's
  schedule (the same steps, batches and dropout keys), its last one the longer schedule.
  """
  from training import compare as compare_lib  # noqa: PLC0415
  from training import history  # noqa: PLC0415
  from training import tasks  # noqa: PLC0415
  from training.config_files import load_config  # noqa: PLC0415  (the training extra)
  from training.schema import TrainConfig  # noqa: PLC0415
  from training.trainer import train_and_evaluate  # noqa: PLC0415

  csv = os.path.join(REPO, "data", "PTELD_hourly.csv")
  base = [
    f"task.csv_files=[{csv}]",
    "train.progress_bar=false",
    f"train.num_epochs={plan.long_epochs}",
    *plan.energy_overrides,
  ]
  probe = load_config(TrainConfig, os.path.join(REPO, "configs", "energy_gru.yaml"), base)
  steps_per_epoch = tasks.build_task(probe.task, seed=0, batch_size=probe.train.batch_size).steps_per_epoch
  every = plan.post_epochs * steps_per_epoch  # evaluations (and checkpoints) at the post's epoch 5, 10, ...
  base += [f"train.eval_every={every}", f"train.checkpoint_every={every}"]
  runs, post_rows, not_run, took = [], [], [], {}
  for seed in plan.energy_seeds:
    for model in plan.energy_models:
      need = took.get(model, 0.0) * 1.1
      if clock.left("energy") < need or clock.left("energy") <= 0:
        not_run.append({"model": model, "seed": seed, "why": "time budget"})
        log(f"  energy {model} seed {seed}: not run (time budget)")
        continue
      config = load_config(TrainConfig, os.path.join(REPO, "configs", f"energy_{model}.yaml"), [*base, f"seed={seed}"])
      folder = os.path.join(workdir, f"{model}_seed{seed}")
      started = time.perf_counter()
      summary = train_and_evaluate(config, folder)
      took[model] = time.perf_counter() - started
      runs.append(folder)
      at_post = [
        r
        for r in history.read(os.path.join(folder, "metrics.jsonl"))
        if r.get("split") == "test" and r["step"] == every
      ]
      post_rows.append({"model": model, "seed": seed, "epochs": plan.post_epochs, **(at_post[0] if at_post else {})})
      log(
        f"  energy {model} seed {seed}: {took[model]:.0f} s, {summary['seconds_per_epoch']:.2f} s/epoch, "
        f"test sMAPE {summary['test']['smape']:.3f}% after {plan.long_epochs} epochs"
        + (f", {at_post[0]['smape']:.3f}% after {plan.post_epochs}" if at_post else "")
      )
  result = {
    "steps_per_epoch": steps_per_epoch,
    "post_epochs": plan.post_epochs,
    "long_epochs": plan.long_epochs,
    "overrides": base,
    "not_run": not_run,
    "post": post_rows,
    "long": [],
    "long_models": [],
    "markdown_long": "",
    "markdown_seeds": "",
  }
  if runs:
    comparison = os.path.join(workdir, "comparison")
    rows = compare_lib.compare(runs, comparison)
    result["long"] = [{k: v for k, v in r.items() if k != "workdir"} for r in rows]
    result["long_models"] = compare_lib.seed_summary(rows)
    result["markdown_long"] = compare_lib.markdown(rows)
    result["markdown_seeds"] = compare_lib.markdown_seeds(rows)
    result["forecast_png"] = os.path.join(comparison, "comparison.png")
  return result


# --- the report ----------------------------------------------------------------------------------


def write(state: dict, out: str, cases: Sequence[results_lib.CaseResult]) -> None:
  """(Re)writes the report, the data and the chart; the log is written as it goes."""
  report = results_lib.Report(state["environment"], {"plan": state["plan"]}, state.get("wall_s", 0.0), tuple(cases))
  data = {k: v for k, v in state.items() if not k.endswith("_md")}
  data["cases"] = json.loads(report_lib.to_json(report))["cases"]
  text = json.dumps(report_lib.jsonable(data), indent=1, allow_nan=False)
  page = gpu_report.markdown(state)
  with open(os.path.join(out, FILES["data"]), "w", encoding="utf-8") as f:
    f.write(text + "\n")
  with open(os.path.join(out, FILES["report"]), "w", encoding="utf-8") as f:
    f.write(page)
  if state.get("proposal"):
    with open(os.path.join(out, FILES["proposal"]), "w", encoding="utf-8") as f:
      json.dump(state["proposal"], f, indent=1)
  if any(r.timed for c in cases for r in c.rows):
    report_lib.chart(report).savefig(os.path.join(out, FILES["chart"]), dpi=100)


PARTS = ("accuracy", "layers", "train_step", "energy")


def run(plan: Plan, out: str, *, command: Sequence[str], parts: Sequence[str] = PARTS) -> dict:
  """Runs ``parts`` of ``plan``, writing into ``out`` (an existing, empty folder) after each.

  Returns:
    The state that :func:`benchmarking.gpu_report.markdown` renders (also in ``gpu_check.json``).
  """
  clock = Clock(plan)
  log_file = open(os.path.join(out, FILES["log"]), "a", encoding="utf-8")  # noqa: SIM115  (closed below)

  def log(line: str) -> None:
    stamped = f"[{clock.elapsed():6.1f} s] {line}"
    print(stamped, file=sys.stderr, flush=True)
    log_file.write(stamped + "\n")
    log_file.flush()

  state = {
    "plan": dataclasses.asdict(plan),
    "parts": {p: ("pending" if p in parts else "not asked") for p in PARTS},
    "errors": [],
  }
  state["environment"] = environment(command)
  env = state["environment"]
  log(f"gpu_check ({plan.name}) on {env['jax_backend']} ({env['jax_device']}); {env.get('nvidia_smi')}")
  cases: list = []
  workdir = tempfile.mkdtemp(prefix="gpu_check_runs_")
  try:
    for part in parts:
      log(f"{part} (may use until {clock.part_deadline(part):.0f} s)")
      started = time.perf_counter()
      try:
        if part == "accuracy":
          state["accuracy"] = run_accuracy(plan, clock, log)
        elif part == "layers":
          layer_cases, state["layers_skipped"] = run_layers(plan, clock, log)
          cases += layer_cases
          state["layers_md"] = report_lib.markdown_tables(results_lib.Report({}, {}, 0.0, tuple(layer_cases)))
          state["goals"] = goals(layer_cases)
        elif part == "train_step":
          step_cases = run_train_step(plan, clock, log)
          cases += step_cases
          if step_cases:
            state["train_step_md"] = report_lib.markdown_tables(results_lib.Report({}, {}, 0.0, tuple(step_cases)))
        elif part == "energy":
          state["energy"] = run_energy(plan, clock, log, workdir)
          if state["energy"].get("forecast_png"):
            shutil.copyfile(state["energy"].pop("forecast_png"), os.path.join(out, FILES["forecast"]))
        state["parts"][part] = f"done in {time.perf_counter() - started:.0f} s"
      except Exception as e:  # one part failing must not lose the others' results
        message = f"{part}: {type(e).__name__}: {e}".splitlines()[0][:500]
        state["errors"].append(message)
        state["parts"][part] = "failed"
        log(f"ERROR {message}")
      state["proposal"] = propose_gpu_auto(state.get("accuracy", []), cases)
      state["wall_s"] = clock.elapsed()
      write(state, out, cases)
  finally:
    shutil.rmtree(workdir, ignore_errors=True)
    log(f"done in {clock.elapsed():.0f} s; wrote {', '.join(sorted(os.listdir(out)))} into {out}")
    log_file.close()
  return state
