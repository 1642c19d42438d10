"""The benchmark's roofline: the products read from compiled HLO, their times inside it, the floor."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import benchmarking
from benchmark_helpers import CONFIGS
from benchmarking import hlo_products
from benchmarking import registry
from benchmarking import roofline
from benchmarking.problem import make_problem
from training.config_files import ConfigError


def _hlo(f, *args):
  return jax.jit(f).lower(*args).compile().as_text()


def test_products_count_every_dot_with_the_trips_of_the_loops_around_it():
  def f(h, w, x, a, b):
    def outer(i, h):  # 3 x 4 runs of h @ w, then 3 of h @ w.T
      h = jax.lax.fori_loop(0, 4, lambda j, h: jnp.tanh(h @ w), h)
      return jnp.tanh(h @ w.T)

    h = jax.lax.fori_loop(0, 3, outer, h)
    return h, x.T @ x, jnp.einsum("bij,bjk->bik", a, b)

  args = jnp.ones((8, 16)), jnp.ones((16, 16)) * 0.1, jnp.ones((32, 5)), jnp.ones((6, 4, 3)), jnp.ones((6, 3, 2))
  found = hlo_products.products(_hlo(f, *args))
  runs = sorted((p.bmkn, p.calls, p.in_loop) for p in found)
  assert runs == sorted(
    [((1, 8, 16, 16), 12, True), ((1, 8, 16, 16), 3, True), ((1, 5, 32, 5), 1, False), ((6, 4, 3, 2), 1, False)]
  )
  assert all(p.dtype == p.out_dtype == "f32" for p in found)
  assert sum(p.flops * p.calls for p in found) == 2 * (15 * 8 * 16 * 16 + 5 * 32 * 5 + 6 * 4 * 3 * 2)


def test_the_products_of_a_training_step_are_the_ones_a_gru_performs():
  # An independent count: per layer, the input projection and the recurrent product forward, their weight
  # gradients, the recurrent input gradient and (above the first layer) the input gradient; the head's
  # forward and weight gradient (its input gradient, [B, 1] x [1, H], XLA computes as a broadcast multiply).
  batch, steps, inputs, hidden = 8, 6, 3, 16
  problem = make_problem((batch, steps, inputs, hidden), "float32", num_layers=2, seed=0)
  runner = registry.get_peer("jaxgru.auto").factory(problem, registry.Mode.TRAIN_STEP)
  found = hlo_products.products(runner.hlo())
  tokens, gates = batch * steps, 3 * hidden
  per_layer = [2 * tokens * gates * (2 * i + 3 * hidden) for i in (inputs, hidden)]  # fwd + dW of both, dh
  expected = sum(per_layer) + 2 * tokens * gates * hidden + 2 * 2 * batch * hidden  # dx of layer 1, the head
  assert sum(p.flops * p.calls for p in found) == expected
  # Their times inside the step: every thunk that holds a product is in the profile.
  runner.call()
  profile = hlo_products.thunk_seconds(runner.call, calls=2)
  assert {p.thunk for p in found} <= set(profile.thunks) and profile.wall_s > 0
  assert all(profile.thunks[p.thunk] > 0 for p in found)
  with pytest.raises(ValueError, match="calls must be a positive number of profiled calls; got 0"):
    hlo_products.thunk_seconds(runner.call, calls=0)


def test_each_product_alone_takes_the_same_work_from_every_source():
  signature = ((24, 16), (24, 8), (0,), (0,), (), (), "f32", "f32")  # x.T @ y: [16, 24] x [24, 8]
  rng = np.random.default_rng(0)
  runs = roofline.runs_per_call(2 * 16 * 24 * 8)
  calls = roofline.xla_calls(signature, runs, rng) | roofline.blas_calls(signature, runs, rng)
  assert {"xla", "xla plain", "numpy"} <= set(calls)
  for call in calls.values():
    call()
  (seconds,) = roofline.measure([signature], repeats=2)
  assert set(seconds) == set(calls) and all(s > 0 for s in seconds.values())


def test_a_flag_set_is_measured_in_its_own_process_and_a_bad_one_is_named():
  signature = ((16, 8), (8, 4), (1,), (0,), (), (), "f32", "f32")
  (row,) = roofline.measure_with_flags("--xla_cpu_enable_fast_math=false", [signature], repeats=2)
  assert set(row) == {"xla --xla_cpu_enable_fast_math=false", "xla plain --xla_cpu_enable_fast_math=false"}
  with pytest.raises(RuntimeError, match="roofline_xla_flags '--xla_no_such_flag=1': the measuring process failed"):
    roofline.measure_with_flags("--xla_no_such_flag=1", [signature], repeats=2)


def test_a_row_without_one_xla_program_is_refused():
  runner = registry.Runner(call=lambda: None, to_numpy=dict, framework="torch")
  with pytest.raises(ValueError, match="row 'torch' is not one XLA program \\(a torch row\\); name a JAX row"):
    roofline.analyze("torch", runner, 1.0, repeats=10)


@pytest.mark.parametrize(
  ("overrides", "message"),
  [
    (["roofline=[no.such_row]"], r"roofline names unknown rows \['no.such_row'\]"),
    (["implementations.include=[torch]", "roofline=[torch]"], r"roofline reads a compiled XLA program; \['torch'\]"),
    (["roofline=[jaxgru.custom_vjp]", "roofline_xla_flags=[fast_math]"], "roofline_xla_flags"),
  ],
)
def test_the_config_refuses_a_roofline_it_cannot_measure(overrides, message):
  with pytest.raises(ConfigError, match=message):
    benchmarking.load(
      CONFIGS / "train_step.yaml", ["implementations.include=[jaxgru.custom_vjp]", "roofline=[]", *overrides]
    )


def test_the_benchmark_writes_the_roofline_beside_its_results(tmp_path):
  config = benchmarking.load(
    CONFIGS / "train_step.yaml",
    [
      "shapes=[[4,5,3,8]]",
      "implementations.include=[jaxgru.custom_vjp]",
      "roofline=[jaxgru.custom_vjp]",
      "roofline_xla_flags=[]",
    ],
  )
  report = benchmarking.run_benchmark(config, log=lambda line: None)
  (case,) = report.cases
  (found,) = case.rooflines
  assert found.row == "jaxgru.custom_vjp" and found.floor_s > 0 and found.products_s > 0
  assert found.floor_s == pytest.approx(sum(t.floor_s for t in found.thunks))
  assert {"xla", "xla plain", "numpy"} <= set(found.sources) <= {"xla", "xla plain", "numpy", "torch"}
  paths = benchmarking.write_all(report, tmp_path)
  page = (tmp_path / "roofline.md").read_text()
  assert paths["roofline"] == str(tmp_path / "roofline.md")
  assert "**jaxgru.custom_vjp, 4x5x3x8 L2, training step" in page and "| thunk |" in page
  saved = json.loads((tmp_path / "results.json").read_text())["cases"][0]["rooflines"][0]
  assert saved["floor_s"] == pytest.approx(found.floor_s) and len(saved["thunks"]) == len(found.thunks)
