"""Tests of the benchmark's training-step and recurrent-policy modes: references, rows and runs end to end."""

import inspect
import json

import numpy as np
import pytest

import benchmarking
import jaxgru
from benchmark_helpers import CONFIGS
from benchmark_helpers import load_entry_point as _load_entry_point
from benchmarking import peers
from benchmarking import recurrent_policy
from benchmarking.problem import flat_params

# --- training step ------------------------------------------------------------------------------


def test_train_step_config_is_the_posts_model():
  config = benchmarking.load(CONFIGS / "train_step.yaml")
  assert config.shapes == ((1024, 90, 5, 256),) and config.num_layers == 2
  assert config.modes == (benchmarking.Mode.TRAIN_STEP,)
  assert {"torch", "flax", "jaxgru.auto"} <= set(config.implementations.selected())


def test_train_step_rows_match_the_reference_and_keep_training():
  problem = benchmarking.make_problem((3, 4, 5, 6), "float32", num_layers=2, seed=1)
  reference = peers.gru_reference(problem, benchmarking.Mode.TRAIN_STEP)
  params = {
    f"layer_{l}/{k}" for l in range(2) for k in ("input_kernel", "recurrent_kernel", "input_bias", "recurrent_bias")
  }
  assert set(reference) == {"loss", "head/kernel", "head/bias"} | params
  initial = flat_params(problem.params)
  assert all(not np.allclose(reference[k], initial[k]) for k in params)  # one Adam step moved every parameter
  names = ["jaxgru.auto", "flax", "torch"]  # every implementation equals the scan: test_internal_runners.py
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
  case = benchmarking.run_case(
    problem, benchmarking.Mode.TRAIN_STEP, ["jaxgru.scan", "equinox"], references, config, log=lambda _: None
  )
  statuses = {row.name: row.status for row in case.rows}
  assert statuses["jaxgru.scan"] == "ok"
  assert statuses["equinox"] in ("error", "skipped")


# --- recurrent policy ---------------------------------------------------------------------------

POLICY_ROWS = ("policy.flax_cell", "policy.jaxgru_cell", "policy.jaxgru_resets", "policy.jaxgru_no_resets")
# The lead's layer change; until it lands the row policy.jaxgru_resets reports "not available".
RESETS_ACCEPTED = "resets" in inspect.signature(jaxgru.GRU.__call__).parameters


def test_policy_references_see_the_resets():
  problem = benchmarking.make_problem((8, 16, 8, 8), "float32", seed=0)
  rollout = recurrent_policy.make_rollout(problem)
  assert rollout.resets[:: recurrent_policy.RESET_AT_START_EVERY, 0].all() and rollout.resets[:, 1:].any()
  # The acting step resets with the same jnp.where at step 0: the update alone keeps this test short.
  with_resets = recurrent_policy.policy_reference(problem, benchmarking.Mode.POLICY_UPDATE)
  without = recurrent_policy.policy_reference(problem, benchmarking.Mode.POLICY_UPDATE, apply_resets=False)
  assert set(with_resets) == set(without) and all(np.isfinite(v).all() for v in with_resets.values())
  assert not benchmarking.compare(without, with_resets, atol=1e-4, rtol=1e-4).ok  # a row ignoring resets fails
  with pytest.raises(ValueError, match="one forward GRU layer"):
    recurrent_policy.policy_reference(
      benchmarking.make_problem((2, 3, 4, 5), "float32", num_layers=2), benchmarking.Mode.POLICY_STEP
    )


@pytest.fixture(scope="module")
def policy_run(tmp_path_factory):
  """The recurrent-policy config run through the entry point at a tiny shape: (results.json, results.md)."""
  out = tmp_path_factory.mktemp("policy") / "run"
  rc = _load_entry_point().main(
    ["--config", str(CONFIGS / "recurrent_policy.yaml"), "shapes=[[8,16,8,8]]", "--out", str(out)]
  )
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


@pytest.mark.skipif(
  not RESETS_ACCEPTED,
  reason="jaxgru.GRU takes no resets= yet (inspect.signature): "
  "the row policy.jaxgru_resets reports 'not available' until it does",
)
def test_policy_layer_with_resets_is_checked_and_timed(policy_run):
  data, _ = policy_run
  for case in data["cases"]:
    row = {r["name"]: r for r in case["rows"]}["policy.jaxgru_resets"]
    assert row["status"] == "ok", row["message"]
    assert len(row["times_s"]) == 10 and set(row["ratio_to"]) == set(case["baselines"])


def test_rows_without_the_mode_are_skipped():
  config = benchmarking.load(CONFIGS / "recurrent_policy.yaml", ["implementations.include=[jaxgru.scan]"])
  case = benchmarking.run_case(
    benchmarking.make_problem((2, 3, 4, 4), "float32"),
    benchmarking.Mode.POLICY_STEP,
    ["jaxgru.scan"],
    {},
    config,
    log=lambda _: None,
  )
  assert case.rows[0].status == "skipped" and "no policy_step model" in case.rows[0].message
