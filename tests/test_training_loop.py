"""The training loop: every task learns, runs repeat exactly, NaN stops, data parallel matches."""

import json
import os
import subprocess
import sys
import typing

import jax
import numpy as np
import optax
import pytest

from training import checkpoint
from training import history
from training import optim
from training import schema
from training import step as step_lib
from training import train_log
from training import trainer
from training_helpers import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_energy_csv(path, num_rows=400):
  hours = np.arange(num_rows)
  load = 1000 + 200 * np.sin(2 * np.pi * hours / 24) + np.random.default_rng(0).normal(0, 10, num_rows)
  with open(path, "w") as f:
    f.write("Datetime,TEST_MW\n")
    for h, value in zip(hours, load):
      f.write(f"2021-01-{1 + h // 24:02d} {h % 24:02d}:00:00,{value:.1f}\n")
  return str(path)


def final_params(config, workdir, key=0):
  """The parameters of the latest checkpoint in ``workdir`` (``key`` != 0: a fresh initialization instead)."""
  task_outputs = {"energy": 1, "adding": 1, "digits": 10}[config.task.kind]
  model = step_lib.create_model(config.model, task_outputs)
  from training import tasks  # pylint: disable=g-import-not-at-top

  task = tasks.build_task(config.task, seed=config.seed, batch_size=config.train.batch_size)
  like = step_lib.create_train_state(
    model, optim.make_optimizer(config.optimizer, 100), jax.random.key(key), task.train_batch(0)[0][:1]
  )
  if key:
    return 0, jax.tree_util.tree_map(np.asarray, like.params)
  ckpt = checkpoint.Checkpoints(os.path.join(workdir, "checkpoints"), keep=1)
  step, state = ckpt.restore_latest(like)
  ckpt.close()
  return step, jax.tree_util.tree_map(np.asarray, state.params)


def train_losses(workdir):
  return [r["loss"] for r in history.read(os.path.join(workdir, "metrics.jsonl")) if r["split"] == "train"]


def check_run_outputs(workdir, summary, result_plot):
  for name in ("config.yaml", "metrics.jsonl", "loss.png", "summary.json", "test_predictions.npz", result_plot):
    assert os.path.getsize(os.path.join(workdir, name)) > 0, name
  with open(os.path.join(workdir, "summary.json")) as f:
    assert json.load(f) == json.loads(json.dumps(summary))
  test_records = [r for r in history.read(os.path.join(workdir, "metrics.jsonl")) if r["split"] == "test"]
  assert [r["step"] for r in test_records] == [15, 30]


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_energy_task_learns_with_gru_and_lstm(energy_runs, kind):
  workdir, summary = energy_runs[kind]
  losses = train_losses(workdir)
  assert len(losses) >= 6 and losses[-1] < 0.5 * losses[0], losses
  check_run_outputs(workdir, summary, "forecast.png")
  assert summary["model"] == kind
  baselines = {
    f"{name}_{m}"
    for name in ("last_hour", "same_hour_yesterday", "same_hour_last_week")
    for m in ("smape", "mae", "rmse")
  }
  assert {"smape", "mae", "rmse", *baselines} <= set(summary["test"])
  with np.load(os.path.join(workdir, "test_predictions.npz")) as saved:
    assert summary["test"]["smape"] == pytest.approx(
      100
      * np.mean(2 * np.abs(saved["forecast"] - saved["actual"]) / (np.abs(saved["forecast"]) + np.abs(saved["actual"])))
    )


@pytest.mark.parametrize("kind", ["adding", "digits"])
def test_adding_and_digits_tasks_learn(tmp_path, kind):
  task = {"adding": {"kind": "adding", "length": 10, "test_size": 64}, "digits": {"kind": "digits"}}[kind]
  workdir = str(tmp_path / "run")
  summary = trainer.train_and_evaluate(tiny_config(task), workdir)
  losses = train_losses(workdir)
  # In 30 steps of batch 16 the adding loss falls by a third (noisily) and the test error ends well
  # below predicting the constant 1; ten-class cross-entropy starts near log(10) and falls.
  assert len(losses) >= 6 and losses[-1] < {"digits": 0.95, "adding": 0.8}[kind] * losses[0], losses
  check_run_outputs(workdir, summary, "result.png")
  if kind == "adding":
    assert set(summary["test"]) == {"loss", "mse", "constant_prediction_mse"}
    assert summary["test"]["mse"] < 0.75 * summary["test"]["constant_prediction_mse"]
  else:
    assert summary["test"]["accuracy"] > 0.2  # ten classes: chance is 0.1


def test_same_seed_gives_identical_parameters(tmp_path):
  config = tiny_config({"kind": "adding", "length": 8, "test_size": 16}, train={"num_steps": 6, "eval_every": 6})
  trainer.train_and_evaluate(config, str(tmp_path / "a"))
  trainer.train_and_evaluate(config, str(tmp_path / "b"))
  (_, a), (_, b) = final_params(config, str(tmp_path / "a")), final_params(config, str(tmp_path / "b"))
  jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)
  assert not np.array_equal(a["head"]["kernel"], final_params(config, str(tmp_path / "a"), key=1)[1]["head"]["kernel"])


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
  # Plain SGD at a huge rate overflows within a few steps.
  config = tiny_config(
    {"kind": "adding", "length": 8, "test_size": 16},
    optimizer={"name": "sgd", "learning_rate": 1e30},
    train={"num_steps": 20, "log_every": 1, "checkpoint_every": 1, "eval_every": 20},
  )
  workdir = str(tmp_path / "run")
  with pytest.raises(
    train_log.NonFiniteLossError, match=r"non-finite at step (\d+).*last good checkpoint, step"
  ) as info:
    trainer.train_and_evaluate(config, workdir)
  bad_step = int(info.value.args[0].split("non-finite at step ")[1].split(" ")[0])
  steps = checkpoint.Checkpoints(os.path.join(workdir, "checkpoints"), keep=3).steps()
  assert steps and max(steps) == bad_step - 1
  step, params = final_params(config, workdir)
  assert step == bad_step - 1
  assert all(np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(params))
  assert not os.path.exists(os.path.join(workdir, "summary.json"))


def test_optimizers_and_schedules():
  for name in typing.get_args(schema.OptimizerName):
    for schedule in typing.get_args(schema.ScheduleName):
      config = schema.Optimizer(name=name, schedule=schedule, warmup_steps=2, clip_global_norm=1.0)
      tx = optim.make_optimizer(config, total_steps=10)
      params = {"w": np.ones(3, np.float32)}
      state = tx.init(params)
      for _ in range(3):  # past the warmup, where the rate is above zero
        updates, state = tx.update({"w": np.full(3, 100.0, np.float32)}, state, params)
        params = optax.apply_updates(params, updates)
      assert np.all(np.asarray(params["w"]) < 1.0), (name, schedule)
  # Clipping bounds the SGD step by the learning rate times the clip norm.
  tx = optim.make_optimizer(schema.Optimizer(name="sgd", learning_rate=1.0, clip_global_norm=0.5), total_steps=1)
  updates, _ = tx.update({"w": np.full(4, 100.0, np.float32)}, tx.init({"w": np.zeros(4, np.float32)}))
  assert np.linalg.norm(np.asarray(updates["w"])) == pytest.approx(0.5, rel=1e-5)
  with pytest.raises(ValueError, match="warmup_steps"):
    optim.make_schedule(schema.Optimizer(schedule="warmup_cosine", warmup_steps=10), total_steps=10)
  # Every name the schema accepts has a builder, and nothing else.
  assert set(optim.OPTIMIZERS) == set(typing.get_args(schema.OptimizerName))
  assert set(optim.SCHEDULES) == set(typing.get_args(schema.ScheduleName))


_DEVICE_RUN = """
import json
import jax
from training.config_files import validate
from training import history, schema, trainer
config = validate(schema.TrainConfig, json.loads({config!r}), "test")
trainer.train_and_evaluate(config, {workdir!r})
refused = None
try:  # a batch that does not split over the devices is refused before anything is written
  if jax.device_count() > 1:
    trainer.train_and_evaluate(config.model_copy(update={{"train": config.train.model_copy(update={{"batch_size": 6}})}}), {workdir!r} + "x")
except ValueError as e:
  refused = str(e)
print(json.dumps({{"devices": jax.device_count(), "refused": refused,
                  "losses": [r["loss"] for r in history.read({workdir!r} + "/metrics.jsonl") if r["split"] == "train"]}}))
"""


@pytest.mark.slow
def test_four_devices_match_one_device(tmp_path, subprocess_env):
  config = {
    "task": {"kind": "adding", "length": 10, "test_size": 32},
    "model": {"hidden": 16, "num_layers": 2, "dropout": 0.2},
    "optimizer": {"learning_rate": 1e-2},
    "train": {"batch_size": 16, "num_steps": 12, "log_every": 1, "eval_every": 6, "progress_bar": False},
  }
  procs = {}
  for count in (1, 4):
    env = {**subprocess_env, "XLA_FLAGS": f"--xla_force_host_platform_device_count={count}"}
    code = _DEVICE_RUN.format(config=json.dumps(config), workdir=str(tmp_path / f"d{count}"))
    procs[count] = subprocess.Popen(
      [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
  results = {}
  for count, proc in procs.items():
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    results[count] = json.loads(out.strip().splitlines()[-1])
  assert results[1]["devices"] == 1 and results[4]["devices"] == 4
  assert len(results[4]["losses"]) == 12
  assert "train.batch_size (6) must be a multiple of the device count (4)" in results[4]["refused"]
  assert not os.path.exists(str(tmp_path / "d4x"))
  # Sharded reductions add in another order: equal up to float rounding.
  np.testing.assert_allclose(results[4]["losses"], results[1]["losses"], rtol=1e-4)
  assert results[1]["losses"][-1] < results[1]["losses"][0]


def test_gru_and_lstm_energy_runs_compare_side_by_side(energy_runs, tmp_path):
  from training import compare  # pylint: disable=g-import-not-at-top

  workdirs = [energy_runs["gru"][0], energy_runs["lstm"][0]]
  rows = compare.compare(workdirs, str(tmp_path / "report"))
  assert [r["model"] for r in rows] == ["gru", "lstm"]
  assert rows[1]["num_params"] > rows[0]["num_params"]  # four gates against three
  assert rows[0]["same_hour_yesterday_smape"] == rows[1]["same_hour_yesterday_smape"]
  assert rows[0]["smape"] == energy_runs["gru"][1]["test"]["smape"]
  for name in ("comparison.json", "comparison.md", "comparison.png"):
    assert os.path.getsize(tmp_path / "report" / name) > 0
  with open(tmp_path / "report" / "comparison.md") as f:
    assert f.read().splitlines()[0].startswith("| model | seed | sMAPE % | MAE |")
  os.makedirs(tmp_path / "adding")
  with open(tmp_path / "adding" / "summary.json", "w") as f:
    json.dump({"task": "adding"}, f)
  with pytest.raises(ValueError, match="only energy runs"):
    compare.compare([workdirs[0], str(tmp_path / "adding")], str(tmp_path / "report2"))
  with pytest.raises(ValueError, match="no finished run"):
    compare.compare([str(tmp_path / "nothing")], str(tmp_path / "report3"))
  # The command-line entry point.
  import runpy  # pylint: disable=g-import-not-at-top

  main = runpy.run_path(os.path.join(REPO, "experiments", "compare_energy.py"))["main"]
  assert main(["--runs", *workdirs, "--out", str(tmp_path / "cli")]) == rows
  assert (tmp_path / "cli" / "comparison.png").exists()
