"""Tests of the benchmark rows (benchmarking): the registry, the equality check, problems and timing; tiny shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import benchmarking
from benchmark_helpers import CONFIGS
from benchmark_helpers import LAYER_MODES
from benchmark_helpers import TINY
from benchmarking import peers
from benchmarking import registry
from benchmarking.problem import flat_params
from jaxgru import Implementation

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
  grads = {
    f"layer_{l}/{k}" for l in range(2) for k in ("input_kernel", "recurrent_kernel", "input_bias", "recurrent_bias")
  }
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
    benchmarking.Mode.FORWARD: {
      "test.zeros": "mismatch",
      "test.bad-backward": "ok",
      "test.raises": "error",
      "test.not-installed": "skipped",
    },
    # The wrong gradient hides in the backward pass only.
    benchmarking.Mode.FORWARD_BACKWARD: {
      "test.zeros": "mismatch",
      "test.bad-backward": "mismatch",
      "test.raises": "error",
      "test.not-installed": "skipped",
    },
  }
  for mode, statuses in expected.items():
    reference = peers.gru_reference(problem, mode)
    case = benchmarking.run_case(
      problem, mode, ("jaxgru.scan", "flax", *wrong_peers), {"gru": reference}, config, log=lambda line: None
    )
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
    config = benchmarking.load(
      CONFIGS / "cpu.yaml", TINY + ["modes=[forward]", "implementations.include=[jaxgru.scan,test.other-model]"]
    )
    report = benchmarking.run_benchmark(config, log=lambda line: None)
  finally:
    benchmarking.unregister_peer("test.other-model")
    registry._REFERENCES.pop("test-model")
  rows = {row.name: row for row in report.cases[0].rows}
  assert rows["jaxgru.scan"].status == "ok" and rows["test.other-model"].status == "ok"
  assert report.environment["jax_backend"] == jax.default_backend()


# --- timing -------------------------------------------------------------------------------------


def test_time_interleaved_rotates_and_counts():
  order = []
  calls = {n: (lambda n=n: order.append(n)) for n in "abc"}
  samples = benchmarking.time_interleaved(calls, repeats=3, warmup=1)
  assert {n: len(s) for n, s in samples.items()} == {"a": 3, "b": 3, "c": 3}
  assert order == list("abcbcacababc")
  with pytest.raises(ValueError):
    benchmarking.time_interleaved(calls, repeats=0)


def test_summarize():
  stats = benchmarking.summarize([4.0, 1.0, 3.0, 2.0])
  assert (stats.median, stats.min, stats.max, stats.n) == (2.5, 1.0, 4.0, 4)
  assert stats.q1 <= stats.median <= stats.q3
  with pytest.raises(ValueError):
    benchmarking.summarize([])
