"""Tests of the benchmark harness (benchmarking): config, equality check, timing, reports, end to end.

Shapes are tiny and no test asserts a time.
"""

import dataclasses
import importlib.util
import inspect
import json
import pathlib

import jax
import jax.numpy as jnp
import matplotlib.image
import numpy as np
import pytest

import benchmarking
import jaxgru
from benchmarking import peers, recurrent_policy, registry, results, timing
from benchmarking.problem import flat_params
from training.config_files import ConfigError
from jaxgru import Implementation

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "bench"
TINY = ["shapes=[[2,5,3,4]]", "results_dir=unused"]
LAYER_MODES = {benchmarking.Mode.FORWARD, benchmarking.Mode.FORWARD_BACKWARD}


def _load_entry_point():
  spec = importlib.util.spec_from_file_location("benchmark_entry_point", ROOT / "experiments" / "benchmark.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


# --- config -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cpu.yaml", "gpu.yaml"])
def test_shipped_configs_load(name):
  config = benchmarking.load(CONFIGS / name)
  assert len(config.shapes) >= 4 and config.repeats >= 10
  assert set(config.modes) == LAYER_MODES
  assert all(len(shape) == 4 for shape in config.shapes)


def test_cpu_config_has_the_four_target_shapes():
  config = benchmarking.load(CONFIGS / "cpu.yaml")
  for shape in [(32, 128, 64, 128), (16, 1024, 32, 64), (64, 512, 128, 256), (256, 64, 256, 512)]:
    assert shape in config.shapes


def test_gpu_config_has_float32_and_bfloat16():
  assert set(benchmarking.load(CONFIGS / "gpu.yaml").dtypes) == {"float32", "bfloat16"}


def test_overrides_apply():
  config = benchmarking.load(CONFIGS / "cpu.yaml", ["shapes=[[1,2,3,4]]", "repeats=12", "implementations.exclude=[torch]",
                                                  "modes=[forward]", "results_dir=/tmp/x"])
  assert config.shapes == ((1, 2, 3, 4),)
  assert config.repeats == 12
  assert config.modes == (benchmarking.Mode.FORWARD,)
  assert "torch" not in config.implementations.selected()
  assert "flax" in config.implementations.selected()
  assert config.results_dir == "/tmp/x"


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("no_such_key=1", "unknown key 'no_such_key'"),
        ("implementations.nope=[]", "unknown key 'implementations.nope'"),
        ("repeats=ten", "repeats"),
        ("repeats=5", "repeats"),  # fewer than 10 timed runs
        ("repeats=10.5", "repeats"),
        ("shapes=[[1,2,3]]", "shapes"),
        ("shapes=[[1,2,3,0]]", "shapes"),
        ("dtypes=[float64]", "dtypes"),
        ("modes=[sideways]", "modes"),
        ("implementations.include=[jaxgru.nope]", "unknown implementations"),
        ("dtypes=[float16]", "tolerances has no entry"),  # cpu.yaml lists float32 tolerances only
    ],
)
def test_bad_config_raises_config_error(override, fragment):
  with pytest.raises(ConfigError, match=fragment.replace("[", r"\[")):
    benchmarking.load(CONFIGS / "cpu.yaml", [override])


def test_missing_config_file():
  with pytest.raises(FileNotFoundError):
    benchmarking.load(CONFIGS / "no_such.yaml")


# --- registry -----------------------------------------------------------------------------------


def test_every_implementation_has_a_row():
  names = benchmarking.peer_names()
  for implementation in Implementation:
    assert f"jaxgru.{implementation.value}" in names
  assert {"flax", "torch", "equinox"} <= set(names)


def test_registry_rejects_duplicates_and_unknown_names():
  with pytest.raises(ValueError, match="already registered"):
    benchmarking.register_peer("flax")
  with pytest.raises(ValueError, match="unknown benchmark peer"):
    benchmarking.get_peer("no-such-row")
  with pytest.raises(ValueError, match="not registered"):
    benchmarking.unregister_peer("no-such-row")


# --- equality check -----------------------------------------------------------------------------


def test_compare_accepts_equal_and_rejects_different():
  ref = {"outputs": np.array([[0.5, -0.25]]), "inputs": np.array([100.0, -50.0])}
  same = benchmarking.compare({k: v + 1e-7 for k, v in ref.items()}, ref, atol=1e-6, rtol=0.0)
  assert same.ok and same.max_abs_diff == pytest.approx(1e-7)
  # rtol scales with each array's largest reference magnitude: 0.05 on "inputs" is within 1e-3 * 100.
  scaled = benchmarking.compare({"outputs": ref["outputs"], "inputs": ref["inputs"] + 0.05}, ref, atol=0.0, rtol=1e-3)
  assert scaled.ok
  off = benchmarking.compare({"outputs": ref["outputs"] + 0.01, "inputs": ref["inputs"]}, ref, atol=1e-3, rtol=1e-3)
  assert not off.ok and off.worst == "outputs" and "MISMATCH" in off.message


@pytest.mark.parametrize(
    "result",
    [
        {"outputs": np.zeros((1, 3))},  # wrong shape
        {"outputs": np.zeros((1, 2)), "extra": np.zeros(1)},  # unexpected array
        {},  # missing array
        {"outputs": np.array([[np.nan, 0.0]])},  # not finite
    ],
)
def test_compare_rejects_malformed_results(result):
  verdict = benchmarking.compare(result, {"outputs": np.zeros((1, 2))}, atol=1.0, rtol=1.0)
  assert not verdict.ok


@pytest.mark.parametrize("mode", sorted(LAYER_MODES))
def test_every_available_peer_matches_the_reference(mode):
  problem = benchmarking.make_problem((2, 5, 3, 4), "float32", num_layers=2, seed=1)
  reference = peers.gru_reference(problem, mode)
  grads = {f"layer_{l}/{k}" for l in range(2) for k in ("input_kernel", "recurrent_kernel", "input_bias", "recurrent_bias")}
  backward = mode is benchmarking.Mode.FORWARD_BACKWARD
  assert set(reference) == {"outputs"} | ({"inputs"} | grads if backward else set())
  assert reference["outputs"].shape == (2, 5, 4)
  checked = 0
  for name in benchmarking.peer_names():
    peer = benchmarking.get_peer(name)
    if peer.missing() or peer.model != "gru":
      continue
    if name == "jaxgru.pallas" and jax.default_backend() != "gpu":
      with pytest.raises(ValueError, match="implementation 'pallas'"):  # refused, never a silent fallback
        peer.factory(problem, mode).call()
      continue
    runner = peer.factory(problem, mode)
    verdict = benchmarking.compare(runner.to_numpy(runner.call()), reference, atol=1e-5, rtol=1e-5)
    assert verdict.ok, f"{name}: {verdict.message}"
    checked += 1
  assert checked >= 3  # the jaxgru rows and flax at least


def _wrong_backward_apply(problem):
  """The GRU with a correct forward pass and a backward pass 1% too large."""
  layer_apply = peers._jaxgru_apply(problem, Implementation.SCAN, problem.dtype)

  @jax.custom_vjp
  def scaled_identity(y):
    return y

  scaled_identity.defvjp(lambda y: (y, None), lambda _, g: (g * 1.01,))
  return lambda params, x: scaled_identity(layer_apply(params, x))


@pytest.fixture
def wrong_peers():
  """Registers deliberately wrong rows; removes them afterwards."""

  @benchmarking.register_peer("test.zeros")
  def zeros(problem, mode):  # fast and wrong
    def apply(params, x):
      return jnp.zeros(x.shape[:2] + (problem.shape[3],), x.dtype) * params["w"]

    return benchmarking.jax_runner(apply, {"w": jnp.ones(())}, problem, mode, grads_to_layout=lambda d: {})

  @benchmarking.register_peer("test.bad-backward")
  def bad_backward(problem, mode):
    params = jax.tree.map(jnp.asarray, problem.params)
    return benchmarking.jax_runner(_wrong_backward_apply(problem), params, problem, mode, grads_to_layout=flat_params)

  @benchmarking.register_peer("test.raises")
  def raises(problem, mode):
    raise RuntimeError("this kernel needs a GPU")

  @benchmarking.register_peer("test.not-installed", requires=("no_such_module_xyz",))
  def not_installed(problem, mode):
    raise AssertionError("never called")

  names = ("test.zeros", "test.bad-backward", "test.raises", "test.not-installed")
  yield names
  for name in names:
    benchmarking.unregister_peer(name)


def test_wrong_rows_are_caught_and_never_timed(wrong_peers):
  config = benchmarking.load(CONFIGS / "cpu.yaml", TINY)
  problem = benchmarking.make_problem((2, 5, 3, 4), "float32", seed=0)
  expected = {
      benchmarking.Mode.FORWARD: {"test.zeros": "mismatch", "test.bad-backward": "ok", "test.raises": "error",
                               "test.not-installed": "skipped"},
      # The wrong gradient hides in the backward pass only.
      benchmarking.Mode.FORWARD_BACKWARD: {"test.zeros": "mismatch", "test.bad-backward": "mismatch",
                                        "test.raises": "error", "test.not-installed": "skipped"},
  }
  for mode, statuses in expected.items():
    reference = peers.gru_reference(problem, mode)
    case = benchmarking.run_case(problem, mode, ("jaxgru.scan", "flax", *wrong_peers), {"gru": reference}, config,
                              log=lambda line: None)
    rows = {row.name: row for row in case.rows}
    assert list(rows) == ["jaxgru.scan", "flax", *wrong_peers]
    assert rows["jaxgru.scan"].timed and rows["jaxgru.scan"].stats.n == config.repeats
    assert rows["jaxgru.scan"].ratio_to["flax"] > 0
    assert {name: rows[name].status for name in wrong_peers} == statuses
    for name, status in statuses.items():
      if status != "ok":
        assert not rows[name].timed and rows[name].times_s == () and rows[name].ratio_to == {}
    assert "needs a GPU" in rows["test.raises"].message


@pytest.mark.parametrize(
    "shape, dtype, layers",
    [((2, 3, 4), "float32", 1), ((2, 3, 4, 0), "float32", 1), ((2, 3, 4, 5), "float64", 1), ((2, 3, 4, 5), "float32", 0)],
)
def test_make_problem_rejects_bad_arguments(shape, dtype, layers):
  with pytest.raises(ValueError, match="shape|dtype|num_layers"):
    benchmarking.make_problem(shape, dtype, num_layers=layers)


def test_make_problem_rounds_to_the_dtype():
  problem = benchmarking.make_problem((2, 3, 4, 5), "bfloat16", num_layers=1)
  assert problem.inputs.dtype == np.float32 and problem.tokens == 6
  as_bf16 = np.asarray(jnp.asarray(problem.inputs).astype(jnp.bfloat16).astype(jnp.float32))
  np.testing.assert_array_equal(problem.inputs, as_bf16)
  assert np.any(problem.params["layer_0"]["recurrent_bias"] != 0)  # biases drawn, not zero


def test_rows_of_another_model_are_checked_against_its_reference():
  @benchmarking.register_reference("test-model")
  def zeros_reference(problem, mode):
    return {"outputs": np.zeros(problem.shape[:2] + (problem.shape[3],), np.float32)}

  @benchmarking.register_peer("test.other-model", model="test-model")
  def other_model(problem, mode):
    apply = lambda params, x: jnp.zeros(x.shape[:2] + (problem.shape[3],), x.dtype) * params["w"]
    return benchmarking.jax_runner(apply, {"w": jnp.ones(())}, problem, mode, grads_to_layout=lambda d: {})

  try:
    config = benchmarking.load(CONFIGS / "cpu.yaml", TINY + ["modes=[forward]",
                                                          "implementations.include=[jaxgru.scan,test.other-model]"])
    report = benchmarking.run_benchmark(config, log=lambda line: None)
  finally:
    benchmarking.unregister_peer("test.other-model")
    registry._REFERENCES.pop("test-model")
  rows = {row.name: row for row in report.cases[0].rows}
  assert rows["jaxgru.scan"].status == "ok" and rows["test.other-model"].status == "ok"
  assert report.environment["jax_backend"] == jax.default_backend()


def test_memory_ratios_where_reported():
  rows = [dataclasses.replace(_row("flax", 0.02), memory_bytes=2000),
          dataclasses.replace(_row("jaxgru.scan", 0.01), memory_bytes=1000), _row("torch", 0.04)]
  by_name = {r.name: r for r in results.with_ratios(rows)}
  assert by_name["jaxgru.scan"].memory_ratio_to == {"flax": 0.5}


# --- timing -------------------------------------------------------------------------------------


def test_time_interleaved_rotates_and_counts():
  order = []
  calls = {n: (lambda n=n: order.append(n)) for n in "abc"}
  samples = benchmarking.time_interleaved(calls, repeats=3, warmup=1)
  assert {n: len(s) for n, s in samples.items()} == {"a": 3, "b": 3, "c": 3}
  assert order == list("abc" "bca" "cab" "abc")
  with pytest.raises(ValueError):
    benchmarking.time_interleaved(calls, repeats=0)


def test_summarize():
  stats = benchmarking.summarize([4.0, 1.0, 3.0, 2.0])
  assert (stats.median, stats.min, stats.max, stats.n) == (2.5, 1.0, 4.0, 4)
  assert stats.q1 <= stats.median <= stats.q3
  with pytest.raises(ValueError):
    benchmarking.summarize([])


# --- reports ------------------------------------------------------------------------------------


def _row(name, median, status="ok", framework="jax"):
  if status != "ok":
    return results.RowResult(name, status, f"{status} because of a test", max_abs_diff=float("inf"))
  times = (median * 0.9, median, median * 1.2)
  return results.RowResult(name, "ok", "ok", framework, 1e-7, {"outputs": 1e-7}, 0.5, times,
                           timing.summarize(times), 100 / median, None)


def _synthetic_report():
  rows = [_row("jaxgru.scan", 0.01), _row("flax", 0.02), _row("torch", 0.04, framework="torch"),
          _row("jaxgru.bad", 0.0, status="mismatch"), _row("equinox", 0.0, status="skipped")]
  case = results.CaseResult((2, 50, 3, 4), "float32", "forward", 1, tuple(results.with_ratios(rows)))
  config = benchmarking.load(CONFIGS / "cpu.yaml", TINY)
  return results.Report(results.environment(), config.model_dump(mode="json"), 1.0, (case,))


def test_ratios_are_relative_to_flax_and_torch():
  rows = {r.name: r for r in _synthetic_report().cases[0].rows}
  assert rows["jaxgru.scan"].ratio_to == pytest.approx({"flax": 0.5, "torch": 0.25})
  assert rows["jaxgru.scan"].memory_ratio_to == {}  # no memory reported
  assert rows["flax"].ratio_to["flax"] == pytest.approx(1.0)
  assert rows["jaxgru.bad"].ratio_to == {}


def test_writers_produce_well_formed_files(tmp_path):
  paths = benchmarking.write_all(_synthetic_report(), tmp_path / "out")
  data = json.loads(pathlib.Path(paths["json"]).read_text())
  rows = {r["name"]: r for r in data["cases"][0]["rows"]}
  assert rows["jaxgru.scan"]["stats"]["median"] == pytest.approx(0.01)
  assert rows["jaxgru.bad"]["max_abs_diff"] == "inf" and rows["jaxgru.bad"]["status"] == "mismatch"
  assert data["environment"]["versions"]["jax"] == jax.__version__
  table = pathlib.Path(paths["markdown"]).read_text()
  table_rows = [line for line in table.splitlines() if line.startswith("| 2x50x3x4")]
  assert len(table_rows) == 5
  assert all(line.count("|") == table_rows[0].count("|") for line in table_rows)
  assert "FAILED CHECK" in table and "skipped" in table
  image = matplotlib.image.imread(paths["chart"])
  assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


# --- training step ------------------------------------------------------------------------------


def test_train_step_config_is_the_posts_model():
  config = benchmarking.load(CONFIGS / "train_step.yaml")
  assert config.shapes == ((1024, 90, 5, 256),) and config.num_layers == 2
  assert config.modes == (benchmarking.Mode.TRAIN_STEP,)
  assert {"torch", "flax", "jaxgru.auto"} <= set(config.implementations.selected())


def test_train_step_rows_match_the_reference_and_keep_training():
  problem = benchmarking.make_problem((3, 4, 5, 6), "float32", num_layers=2, seed=1)
  reference = peers.gru_reference(problem, benchmarking.Mode.TRAIN_STEP)
  params = {f"layer_{l}/{k}" for l in range(2) for k in ("input_kernel", "recurrent_kernel", "input_bias", "recurrent_bias")}
  assert set(reference) == {"loss", "head/kernel", "head/bias"} | params
  initial = flat_params(problem.params)
  assert all(not np.allclose(reference[k], initial[k]) for k in params)  # one Adam step moved every parameter
  names = ["jaxgru.auto", "flax", "torch"]  # every implementation equals the scan: test_implementations.py
  for name in names:
    peer = benchmarking.get_peer(name)
    if peer.missing():
      continue
    runner = peer.factory(problem, benchmarking.Mode.TRAIN_STEP)
    checked = runner.to_numpy(runner.check())  # dropout off, from the initial weights
    expected = {k: v for k, v in reference.items() if k in checked}
    assert {"loss", "head/kernel", "layer_1/recurrent_kernel"} <= set(checked), name
    verdict = benchmarking.compare(checked, expected, atol=1e-5, rtol=1e-5)
    assert verdict.ok, f"{name}: {verdict.message}"
    first, second = (runner.to_numpy(runner.call()) for _ in range(2))  # dropout on, state carried over
    assert np.isfinite(second["loss"]).all() and not np.allclose(first["head/kernel"], second["head/kernel"])


def test_rows_without_a_training_step_are_error_rows():
  problem = benchmarking.make_problem((2, 3, 4, 5), "float32", num_layers=2)
  config = benchmarking.load(CONFIGS / "train_step.yaml", ["implementations.include=[jaxgru.scan,equinox]"])
  references = {"gru": peers.gru_reference(problem, benchmarking.Mode.TRAIN_STEP)}
  case = benchmarking.run_case(problem, benchmarking.Mode.TRAIN_STEP, ["jaxgru.scan", "equinox"], references, config,
                               log=lambda _: None)
  statuses = {row.name: row.status for row in case.rows}
  assert statuses["jaxgru.scan"] == "ok"
  assert statuses["equinox"] in ("error", "skipped")


# --- end to end ---------------------------------------------------------------------------------


def test_end_to_end_through_the_entry_point(tmp_path, capsys):
  out = tmp_path / "run"
  entry = _load_entry_point()
  smoke = ["--cpu-smoke"] if jax.default_backend() != "gpu" else []
  rc = entry.main(["--config", str(CONFIGS / "gpu.yaml"), *smoke, "cpu_smoke_shapes=[[2,6,3,4]]", "shapes=[[2,6,3,4]]",
                   "dtypes=[float32]", "implementations.include=[jaxgru.scan,flax,torch]", "--out", str(out),
                   "--note", "test run"])
  assert rc == 0
  data = json.loads((out / "results.json").read_text())
  assert [(c["mode"], c["dtype"]) for c in data["cases"]] == [("forward", "float32"), ("forward_backward", "float32")]
  torch_installed = importlib.util.find_spec("torch") is not None
  for case in data["cases"]:
    rows = {r["name"]: r for r in case["rows"]}
    assert list(rows) == ["jaxgru.scan", "flax", "torch"]
    assert rows["jaxgru.scan"]["status"] == "ok" and len(rows["jaxgru.scan"]["times_s"]) == 10
    assert rows["torch"]["status"] == ("ok" if torch_installed else "skipped")
    assert rows["jaxgru.scan"]["memory_bytes"] is None or rows["jaxgru.scan"]["memory_bytes"] > 0
  assert (out / "results.md").read_text().startswith("# GRU benchmark\n\n> test run")
  assert (out / "tokens_per_s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert benchmarking.load(out / "config.yaml").shapes == ((2, 6, 3, 4),)
  assert "| 2x6x3x4 | flax |" in capsys.readouterr().out


def test_entry_point_rejects_a_bad_config_before_writing(tmp_path, capsys):
  out = tmp_path / "never"
  rc = _load_entry_point().main(["--config", str(CONFIGS / "cpu.yaml"), "repeats=3", "--out", str(out)])
  assert rc == 2 and not out.exists()
  assert "repeats" in capsys.readouterr().err


@pytest.mark.skipif(jax.default_backend() == "gpu", reason="checks the refusal on a machine without a GPU")
def test_gpu_config_without_a_gpu_stops_at_once(tmp_path, capsys):
  out = tmp_path / "never"
  rc = _load_entry_point().main(["--config", str(CONFIGS / "gpu.yaml"), "--out", str(out)])
  err = capsys.readouterr().err
  assert rc == 2 and not out.exists() and err.count("\n") == 1
  assert "GPU config" in err and "--cpu-smoke" in err
  smoke = benchmarking.for_this_machine(benchmarking.load(CONFIGS / "gpu.yaml"), "cpu", cpu_smoke=True)
  assert smoke.shapes == benchmarking.load(CONFIGS / "gpu.yaml").cpu_smoke_shapes
  assert max(b * t * h for b, t, _, h in smoke.shapes) <= 8 * 128 * 32
  with pytest.raises(benchmarking.DeviceError, match="this machine has a GPU"):
    benchmarking.for_this_machine(smoke, "gpu", cpu_smoke=True)
  assert benchmarking.for_this_machine(benchmarking.load(CONFIGS / "cpu.yaml"), "cpu").shapes  # any device
  rc = _load_entry_point().main(["--config", str(CONFIGS / "gpu.yaml"), "--cpu-smoke", "--update-results"])
  assert rc == 2 and "never replace the committed results" in capsys.readouterr().err


def test_runs_never_write_over_files(tmp_path, monkeypatch, capsys):
  held = tmp_path / "held"
  held.mkdir()
  (held / "results.md").write_text("a user's run")
  rc = _load_entry_point().main(["--config", str(CONFIGS / "cpu.yaml"), "--out", str(held)])
  assert rc == 2 and "already holds files" in capsys.readouterr().err
  assert (held / "results.md").read_text() == "a user's run"
  monkeypatch.chdir(tmp_path)  # the default folder is relative: runs/bench/<config>-<UTC time>
  entry = _load_entry_point()
  config = benchmarking.load(CONFIGS / "cpu.yaml")
  first = entry.output_dir("configs/bench/cpu.yaml", config, None, False)
  (pathlib.Path(first) / "results.md").write_text("first")
  second = entry.output_dir("configs/bench/cpu.yaml", config, None, False)
  assert pathlib.Path(first).resolve().parent == pathlib.Path(second).resolve().parent == tmp_path / "runs" / "bench"
  assert first != second and pathlib.Path(first).name.startswith("cpu-")
  assert entry.output_dir("configs/bench/cpu.yaml", config, None, True) == config.results_dir  # asked for


# --- recurrent policy ---------------------------------------------------------------------------

POLICY_ROWS = ("policy.flax_cell", "policy.jaxgru_cell", "policy.jaxgru_resets", "policy.jaxgru_no_resets")
# The lead's layer change; until it lands the row policy.jaxgru_resets reports "not available".
RESETS_ACCEPTED = "resets" in inspect.signature(jaxgru.GRU.__call__).parameters


def test_policy_references_see_the_resets():
  problem = benchmarking.make_problem((8, 16, 8, 8), "float32", seed=0)
  rollout = recurrent_policy.make_rollout(problem)
  assert rollout.resets[::recurrent_policy.RESET_AT_START_EVERY, 0].all() and rollout.resets[:, 1:].any()
  # The acting step resets with the same jnp.where at step 0: the update alone keeps this test short.
  with_resets = recurrent_policy.policy_reference(problem, benchmarking.Mode.POLICY_UPDATE)
  without = recurrent_policy.policy_reference(problem, benchmarking.Mode.POLICY_UPDATE, apply_resets=False)
  assert set(with_resets) == set(without) and all(np.isfinite(v).all() for v in with_resets.values())
  assert not benchmarking.compare(without, with_resets, atol=1e-4, rtol=1e-4).ok  # a row ignoring resets fails
  with pytest.raises(ValueError, match="one forward GRU layer"):
    recurrent_policy.policy_reference(benchmarking.make_problem((2, 3, 4, 5), "float32", num_layers=2),
                                      benchmarking.Mode.POLICY_STEP)


@pytest.fixture(scope="module")
def policy_run(tmp_path_factory):
  """The recurrent-policy config run through the entry point at a tiny shape: (results.json, results.md)."""
  out = tmp_path_factory.mktemp("policy") / "run"
  rc = _load_entry_point().main(["--config", str(CONFIGS / "recurrent_policy.yaml"), "shapes=[[8,16,8,8]]",
                                 "--out", str(out)])
  assert rc == 0
  return json.loads((out / "results.json").read_text()), (out / "results.md").read_text()


def test_policy_modes_end_to_end(policy_run):
  data, page = policy_run
  assert [c["mode"] for c in data["cases"]] == ["policy_update", "policy_step"]
  for case in data["cases"]:
    rows = {r["name"]: r for r in case["rows"]}
    assert list(rows) == list(POLICY_ROWS)
    assert case["baselines"] == ["policy.flax_cell", "policy.jaxgru_no_resets"]
    for name in ("policy.flax_cell", "policy.jaxgru_cell", "policy.jaxgru_no_resets"):
      assert rows[name]["status"] == "ok", f"{name}: {rows[name]['message']}"
      assert len(rows[name]["times_s"]) == 10 and set(rows[name]["ratio_to"]) == set(case["baselines"])
    if not RESETS_ACCEPTED:  # reported, never fatal
      assert rows["policy.jaxgru_resets"]["status"] == "error"
      assert "not available" in rows["policy.jaxgru_resets"]["message"]
    checked = {"carry"} if case["mode"] == "policy_step" else {"loss", "head/kernel", "layer_0/recurrent_bias"}
    assert checked <= set(rows["policy.jaxgru_cell"]["diffs"])
  step = {r["name"]: r for r in data["cases"][1]["rows"]}["policy.flax_cell"]
  assert step["tokens_per_s"] * step["stats"]["median"] == pytest.approx(8)  # one step of B = 8 environments
  assert "| ×policy.flax_cell | ×policy.jaxgru_no_resets |" in page


@pytest.mark.skipif(not RESETS_ACCEPTED, reason="jaxgru.GRU takes no resets= yet (inspect.signature): "
                    "the row policy.jaxgru_resets reports 'not available' until it does")
def test_policy_layer_with_resets_is_checked_and_timed(policy_run):
  data, _ = policy_run
  for case in data["cases"]:
    row = {r["name"]: r for r in case["rows"]}["policy.jaxgru_resets"]
    assert row["status"] == "ok", row["message"]
    assert len(row["times_s"]) == 10 and set(row["ratio_to"]) == set(case["baselines"])


def test_rows_without_the_mode_are_skipped():
  config = benchmarking.load(CONFIGS / "recurrent_policy.yaml", ["implementations.include=[jaxgru.scan]"])
  case = benchmarking.run_case(benchmarking.make_problem((2, 3, 4, 4), "float32"), benchmarking.Mode.POLICY_STEP,
                               ["jaxgru.scan"], {}, config, log=lambda _: None)
  assert case.rows[0].status == "skipped" and "no policy_step model" in case.rows[0].message
