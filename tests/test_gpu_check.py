"""Tests of the prepared GPU check (experiments/gpu_check.py): the smoke run end to end, refusals, the proposal.

No test asserts a time. The Pallas rows run compiled on a GPU only; here their
lowering for CUDA is checked at the sizes the GPU run uses.
"""

import importlib.util
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export

import benchmarking
import jaxgru
from benchmarking import accuracy
from benchmarking import gpu_analysis
from benchmarking import gpu_plans
from benchmarking import gpu_session
from benchmarking import results
from benchmarking import timing

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _entry_point():
  spec = importlib.util.spec_from_file_location("gpu_check_entry_point", ROOT / "experiments" / "gpu_check.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.skipif(jax.default_backend() == "gpu", reason="checks the refusal on a machine without a GPU")
def test_without_a_gpu_only_smoke_runs(tmp_path, capsys):
  out = tmp_path / "never"
  assert _entry_point().main(["--out", str(out)]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "needs a GPU" in err and "--smoke" in err
  assert not out.exists()


def test_refuses_a_folder_that_holds_files(tmp_path, capsys):
  (tmp_path / "results.md").write_text("someone's results")
  assert _entry_point().main(["--smoke", "--out", str(tmp_path)]) == 2
  assert "already holds files" in capsys.readouterr().err
  assert (tmp_path / "results.md").read_text() == "someone's results"


def test_full_plan_covers_the_issue():
  plan = gpu_plans.full_plan()
  assert {i for i, _ in plan.accuracy_pairs} == {i.value for i in jaxgru.Implementation} - {"auto"}
  assert {d for _, d in plan.accuracy_pairs} == {"float32", "bfloat16"}
  shapes = {(c.shape, c.num_layers, c.bidirectional, c.dtype) for c in plan.layer_cases}
  for dtype in ("float32", "bfloat16"):
    assert ((10, 512, 128, 256), 6, False, dtype) in shapes and ((10, 512, 128, 256), 6, True, dtype) in shapes
    assert ((1024, 90, 5, 256), 2, False, dtype) in shapes
  assert any(c.shape[1] >= 2048 for c in plan.layer_cases)
  assert plan.train_shape == (1024, 90, 5, 256) and plan.post_epochs == 5 and len(plan.energy_seeds) >= 3
  assert set(plan.energy_models) == {"gru", "lstm"} and plan.long_epochs > plan.post_epochs
  assert {"jaxgru.pallas", "flax", "torch"} <= set(plan.layer_rows)
  assert sum(plan.shares.values()) <= 1.0 and plan.budget_s <= 480  # the rest: writing the files
  assert len(gpu_session.FILES) <= 8


# The (B, H, compute dtype) of every Pallas configuration the GPU run compiles (T does not change the kernel).
_PALLAS_CONFIGS = sorted(
  {(c.shape[0], c.shape[3], c.dtype) for c in gpu_plans.full_plan().layer_cases}
  | {
    (gpu_plans.full_plan().accuracy_shape[0], gpu_plans.full_plan().accuracy_shape[3], d)
    for d in ("float32", "bfloat16")
  }
)


def test_every_pallas_configuration_of_the_gpu_run_lowers_for_cuda():
  # Lowering for CUDA needs no GPU (as tests/test_internal_runners.py does for one direction): a shape
  # the Triton lowering cannot take would otherwise fail only on the GPU, in the middle of the lease.
  triton_call = export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")
  seen = set()
  for batch, hidden, dtype in _PALLAS_CONFIGS:
    if (hidden, dtype, batch % 16 == 0) in seen:  # one per H, dtype and whether B fills whole blocks
      continue
    seen.add((hidden, dtype, batch % 16 == 0))
    layer = jaxgru.GRU(features=hidden, bidirectional=True, implementation="pallas", dtype=jnp.dtype(dtype))
    params = {
      name: {k: jax.ShapeDtypeStruct(np.shape(v), jnp.float32) for k, v in p.items()}
      for name, p in benchmarking.make_problem((batch, 4, 8, hidden), dtype, bidirectional=True).params.items()
    }

    def loss(params, x, lengths, layer=layer):
      y, h_n = layer.apply({"params": params}, x, seq_lengths=lengths)
      return jnp.sum(y.astype(jnp.float32)) + jnp.sum(h_n)

    args = (params, jax.ShapeDtypeStruct((batch, 4, 8), jnp.dtype(dtype)), jax.ShapeDtypeStruct((batch,), jnp.int32))
    with pytest.MonkeyPatch.context() as patch:  # the backend check is what stops it on CPU
      patch.setattr(jax, "default_backend", lambda: "gpu")
      exported = export.export(jax.jit(jax.grad(loss)), platforms=["cuda"], disabled_checks=[triton_call])(*args)
    assert "__gpu$xla.gpu.triton" in exported.mlir_module(), (batch, hidden, dtype)


def test_float64_reference_catches_a_wrong_gradient():
  problem = benchmarking.make_problem((3, 4, 2, 4), "float32", num_layers=1, bidirectional=True, seed=5)
  extras = accuracy.draw_extras(problem, 5)
  reference = accuracy.float64_reference(problem, extras)
  assert extras["lengths"][0] == 4 and extras["lengths"][-1] == 1
  assert np.all(reference["outputs"][-1, 1:] == 0)  # past the length: zero, as PyTorch pads
  assert {"grad/inputs", "grad/initial_carry", "grad/layer_0_reverse/recurrent_kernel"} <= set(reference)
  wrong = dict(reference, **{"grad/layer_0/input_bias": reference["grad/layer_0/input_bias"] * 1.01})
  errors = accuracy.relative_errors(wrong, reference)
  assert errors["grad/layer_0/input_bias"] == pytest.approx(0.01) and errors["outputs"] == 0.0
  assert accuracy.relative_errors({**reference, "outputs": reference["outputs"] * np.nan}, reference)[
    "outputs"
  ] == float("inf")


def _case(hidden, medians, mode="forward_backward"):
  rows = []
  for name, median in medians.items():
    times = (median * 0.98, median, median * 1.02)
    rows.append(results.RowResult(name, "ok", "ok", "jax", 0.0, {}, 1.0, times, timing.summarize(times), 1.0))
  return results.CaseResult((8, 16, 4, hidden), "float32", mode, 1, tuple(results.with_ratios(rows)))


def test_proposal_moves_only_to_a_correct_implementation_clearly_faster():
  ok = [{"implementation": i, "status": "ok"} for i in ("scan", "custom_vjp", "custom_vjp_in_loop")]
  failed_pallas = ok + [{"implementation": "pallas", "status": "mismatch"}]
  cases = [
    _case(128, {"jaxgru.custom_vjp": 1.0, "jaxgru.scan": 2.0, "jaxgru.pallas": 0.3}),
    _case(128, {"jaxgru.custom_vjp": 1.0, "jaxgru.scan": 2.0, "jaxgru.pallas": 0.5}),
    _case(256, {"jaxgru.custom_vjp": 1.0, "jaxgru.custom_vjp_in_loop": 0.99}),
    _case(512, {"jaxgru.custom_vjp": 1.0, "jaxgru.scan": 0.5}, mode="forward"),
  ]  # forward: not a training choice
  proposal = gpu_analysis.propose_gpu_auto(failed_pallas, cases)
  by_hidden = {e["hidden"]: e for e in proposal["by_hidden"]}
  assert set(by_hidden) == {128, 256}
  assert by_hidden[128]["choice"] == "custom_vjp"  # pallas fastest but failed its accuracy check
  assert by_hidden[256]["choice"] == "custom_vjp" and by_hidden[256]["fastest"] == "custom_vjp_in_loop"  # within noise
  passed = gpu_analysis.propose_gpu_auto(ok + [{"implementation": "pallas", "status": "ok"}], cases)
  assert {e["hidden"]: e["choice"] for e in passed["by_hidden"]} == {128: "pallas", 256: "custom_vjp"}
  assert passed["dispatch_rule"].startswith("GPU_AUTO_BY_HIDDEN = ((128, 'pallas'), (256, 'custom_vjp'))")


@pytest.mark.slow  # a dozen small XLA compiles (accuracy, layers, training step, two short trainings): 25 s of CPU
def test_smoke_run_end_to_end(tmp_path, capsys):
  out = tmp_path / "check"
  rc = _entry_point().main(["--smoke", "--out", str(out)])
  assert rc == 0, capsys.readouterr().err[-2000:]
  files = sorted(p.name for p in out.iterdir())
  assert len(files) <= 8 and {"gpu_check.md", "gpu_check.json", "gpu_check.log", "gpu_auto.json"} <= set(files)
  data = json.loads((out / "gpu_check.json").read_text())
  assert all(v.startswith("done") for v in data["parts"].values()) and data["errors"] == []
  assert data["environment"]["command"].startswith("python experiments/gpu_check.py --smoke --out")
  status = {(r["implementation"], r["dtype"]): r["status"] for r in data["accuracy"]}
  on_gpu = jax.default_backend() == "gpu"
  for (implementation, _), value in status.items():
    assert value == ("error" if implementation == "pallas" and not on_gpu else "ok"), (implementation, value)
  modes = [c["mode"] for c in data["cases"]]
  assert modes == ["forward", "forward_backward", "train_step"]
  rows = {r["name"]: r for r in data["cases"][1]["rows"]}
  assert rows["jaxgru.custom_vjp"]["status"] == "ok" and len(rows["jaxgru.custom_vjp"]["times_s"]) == 10
  assert data["energy"]["post"][0]["smape"] > 0 and data["energy"]["long"][0]["seconds_per_epoch"] > 0
  assert data["proposal"]["by_hidden"][0]["hidden"] == 16
  report = (out / "gpu_check.md").read_text()
  assert "## Correctness against float64" in report and "## Proposal" in report
