"""Checkpoints: keep the latest N and the best, resume after SIGKILL bit for bit, unreadable ones."""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from training import checkpoint
from training import history
from training import optim
from training import step as step_lib
from training import tasks
from training import trainer
from training.config_files import load_config
from training.schema import TrainConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_SCRIPT = os.path.join(REPO, "experiments", "train.py")

CONFIG = """\
seed: 3
task: {kind: adding, length: 10, test_size: 32}
model: {hidden: 16, num_layers: 2, dropout: 0.2}
optimizer: {name: adamw, learning_rate: 1.0e-2, schedule: warmup_cosine, warmup_steps: 4, clip_global_norm: 1.0}
train: {batch_size: 8, num_steps: 24, log_every: 1, eval_every: 12, checkpoint_every: 4, keep_checkpoints: 2, progress_bar: false}
"""

# Runs experiments/train.py and SIGKILLs itself right after logging step KILL_AT,
# between two checkpoints, as a crash or `kill -9` would.
_KILLED_RUN = """
import os, runpy, signal, sys
from training import history
append = history.append
def append_then_die(path, record):
  append(path, record)
  if record["step"] == {kill_at} and record["split"] == "train":
    os.kill(os.getpid(), signal.SIGKILL)
history.append = append_then_die
sys.argv = ["train.py", "--config", {config!r}, "--workdir", {workdir!r}]
runpy.run_path({script!r}, run_name="__main__")
"""


def latest_params(config, workdir):
  task = tasks.build_task(config.task, seed=config.seed, batch_size=config.train.batch_size)
  model = step_lib.create_model(config.model, task.outputs)
  like = step_lib.create_train_state(
    model, optim.make_optimizer(config.optimizer, 100), jax.random.key(0), task.train_batch(0)[0][:1]
  )
  ckpt = checkpoint.Checkpoints(os.path.join(workdir, "checkpoints"), keep=10)
  step, state = ckpt.restore_latest(like)
  ckpt.close()
  return step, jax.tree_util.tree_map(np.asarray, (state.params, state.opt_state))


def assert_trees_equal(a, b):
  jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


def test_keeps_latest_n_and_the_best(tmp_path):
  ckpt = checkpoint.Checkpoints(str(tmp_path / "ckpt"), keep=2)
  for step, loss in enumerate([5.0, 1.0, 4.0, None, 3.0, 6.0], start=1):
    ckpt.save(step, {"w": jnp.full(3, step, jnp.float32)}, metrics=None if loss is None else {"test_loss": loss})
  assert ckpt.steps() == [2, 5, 6]  # the best (step 2) and the latest two
  assert ckpt.best() == (2, 1.0)
  step, state = ckpt.restore_latest({"w": jnp.zeros(3, jnp.float32)})
  assert step == 6 and state["w"].tolist() == [6.0] * 3
  ckpt.close()
  with pytest.raises(ValueError, match="keep must be a positive integer"):
    checkpoint.Checkpoints(str(tmp_path / "other"), keep=0)
  assert checkpoint.Checkpoints(str(tmp_path / "empty"), keep=1).restore_latest({"w": jnp.zeros(3)}) is None


@pytest.mark.slow
def test_resume_after_sigkill_matches_an_uninterrupted_run_bit_for_bit(tmp_path, subprocess_env):
  config_path = str(tmp_path / "config.yaml")
  with open(config_path, "w") as f:
    f.write(CONFIG)
  config = load_config(TrainConfig, config_path)

  killed = str(tmp_path / "killed")
  code = _KILLED_RUN.format(kill_at=10, config=config_path, workdir=killed, script=TRAIN_SCRIPT)
  proc = subprocess.run([sys.executable, "-c", code], env=subprocess_env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
  assert checkpoint.Checkpoints(os.path.join(killed, "checkpoints"), keep=2).steps() == [4, 8]
  assert max(r["step"] for r in history.read(os.path.join(killed, "metrics.jsonl"))) == 10
  # What a save cut short by a kill leaves behind: orbax's unfinished temporary folder.
  os.makedirs(os.path.join(killed, "checkpoints", "12.orbax-checkpoint-tmp-1"))

  # Rerunning the same command resumes from step 8.
  proc = subprocess.run(
    [sys.executable, TRAIN_SCRIPT, "--config", config_path, "--workdir", killed],
    env=subprocess_env,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "resuming from checkpoint 8" in proc.stdout

  uninterrupted = str(tmp_path / "uninterrupted")
  trainer.train_and_evaluate(config, uninterrupted)

  (step_a, state_a), (step_b, state_b) = latest_params(config, killed), latest_params(config, uninterrupted)
  assert step_a == step_b == 24
  assert_trees_equal(state_a, state_b)
  # The metrics file reads as if the run had never stopped: steps 9 and 10 are not doubled.
  records_a = history.read(os.path.join(killed, "metrics.jsonl"))
  records_b = history.read(os.path.join(uninterrupted, "metrics.jsonl"))
  assert [r["step"] for r in records_a] == [r["step"] for r in records_b]
  assert [r["loss"] for r in records_a] == [r["loss"] for r in records_b]
  with open(os.path.join(killed, "summary.json")) as f:
    assert json.load(f)["resumed_from_step"] == 8


@pytest.mark.slow
def test_unreadable_checkpoint_falls_back_to_the_previous_one_or_stops(tmp_path):
  config_path = str(tmp_path / "config.yaml")
  with open(config_path, "w") as f:
    f.write(CONFIG.replace("num_steps: 24", "num_steps: 8").replace("eval_every: 12", "eval_every: 8"))
  config = load_config(TrainConfig, config_path)
  workdir = str(tmp_path / "run")
  trainer.train_and_evaluate(config, workdir)
  _, finished = latest_params(config, workdir)
  ckpt_dir = os.path.join(workdir, "checkpoints")

  def damage(step, part=""):
    for root, _, files in os.walk(os.path.join(ckpt_dir, str(step), part)):
      for name in files:
        with open(os.path.join(root, name), "wb") as f:
          f.write(b"\x00garbage")

  damage(8, "default")  # the arrays and their metadata: orbax lists the step but cannot restore it
  os.remove(os.path.join(workdir, "summary.json"))  # else the run is finished and left as it is
  with pytest.warns(checkpoint.CheckpointWarning, match="checkpoint 8 .* cannot be read"):
    summary = trainer.train_and_evaluate(config, workdir)
  assert summary["resumed_from_step"] == 4
  assert os.path.isdir(os.path.join(workdir, "unreadable_checkpoints", "8"))
  _, redone = latest_params(config, workdir)
  assert_trees_equal(redone, finished)  # steps 5..8 were trained again, to the same result

  steps = checkpoint.Checkpoints(ckpt_dir, keep=2).steps()
  for step in steps:
    damage(step)  # everything, orbax's own step metadata included
  with (
    pytest.warns(checkpoint.CheckpointWarning),
    pytest.raises(checkpoint.CheckpointError, match="no readable checkpoint"),
  ):
    trainer.train_and_evaluate(config, workdir)
  assert steps == [4, 8]
  # Nothing is deleted: the step 8 set aside before stays beside the second one.
  assert sorted(os.listdir(os.path.join(workdir, "unreadable_checkpoints"))) == ["4", "8", "8.2"]


FROM_MAIN = os.path.join(REPO, "tests", "data", "run_from_main_80e37e2")  # made by main 80e37e2's train.py (c.yaml)


def test_a_run_folder_of_the_previous_version_loads_for_prediction_and_resumes(tmp_path, monkeypatch):
  from training import inference  # pylint: disable=g-import-not-at-top

  shutil.copytree(FROM_MAIN, tmp_path / "old")
  monkeypatch.chdir(tmp_path / "old")  # its config names e.csv relative to where it ran
  run = inference.load_run("run")
  with open("run/summary.json") as f:
    summary = json.load(f)
  assert run.step == summary["best_checkpoint"]["step"] == 4  # orbax's best_step(), read-only
  # The parameters alone, without an optimizer: step 8's forecasts are the run's own test forecasts.
  last = dataclasses.replace(
    run, variables={"params": checkpoint.restore_params("run/checkpoints", 8, run.variables["params"])}
  )
  with np.load("run/test_predictions.npz") as saved:
    np.testing.assert_allclose(inference.forecast(last).forecast, saved["forecast"], rtol=1e-5)
    step8 = jax.tree_util.tree_map(np.asarray, last.variables["params"])
  # Resuming: without its last checkpoint and summary, the old run trains steps 5..8 again, to the same parameters.
  shutil.rmtree("run/checkpoints/8")
  os.remove("run/summary.json")
  config = load_config(TrainConfig, "c.yaml")
  summary = trainer.train_and_evaluate(config, "run")
  assert summary["resumed_from_step"] == 4
  redone = checkpoint.restore_params("run/checkpoints", 8, run.variables["params"])
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), redone, step8)
