"""A run folder never loses a good checkpoint or a metrics line, and never restarts from step 0 by itself.

One tiny finished run is trained once per module and copied into each test.
"""

import os
import shutil
import signal
import subprocess
import sys

import pytest
import yaml

from config_files import ConfigError
from training import checkpoint
from training import history
from training import interrupts
from training import run_folder
from training import trainer
from training_helpers import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_SCRIPT = os.path.join(REPO, "experiments", "train.py")
TASK = {"kind": "adding", "length": 6, "test_size": 16}
TRAIN = {"batch_size": 8, "num_steps": 20, "log_every": 5, "eval_every": 10, "checkpoint_every": 5}


def config_of(**train):
  return tiny_config(TASK, model={"hidden": 8}, train={**TRAIN, **train})


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("finished") / "run")
  trainer.train_and_evaluate(config_of(), workdir)
  return workdir


@pytest.fixture
def run(finished_run, tmp_path):
  """A private copy of the finished run: checkpoints 10, 15, 20."""
  workdir = str(tmp_path / "run")
  shutil.copytree(finished_run, workdir)
  return workdir


def read_bytes(workdir, name):
  with open(os.path.join(workdir, name), "rb") as f:
    return f.read()


def step_folders(workdir, name="checkpoints"):
  return sorted(os.listdir(os.path.join(workdir, name)), key=lambda n: int(n.split(".")[0]))


@pytest.mark.parametrize("damage, moved, resumed", [("mkdir 999", "999", 20), ("rm 20/default", "20", 15)])
def test_one_bad_step_folder_is_set_aside_alone(run, damage, moved, resumed):
  if damage == "mkdir 999":
    os.makedirs(os.path.join(run, "checkpoints", "999"))
  else:
    shutil.rmtree(os.path.join(run, "checkpoints", "20", "default"))
  os.remove(os.path.join(run, "summary.json"))  # killed before the summary: the run goes on
  before = history.read(os.path.join(run, "metrics.jsonl"))
  with pytest.warns(checkpoint.CheckpointWarning, match=f"checkpoint {moved} .* cannot be read.*moved it to"):
    summary = trainer.train_and_evaluate(config_of(), run)
  assert summary["resumed_from_step"] == resumed
  assert step_folders(run, "unreadable_checkpoints") == [moved]
  assert step_folders(run) == ["10", "15", "20"]
  after = history.read(os.path.join(run, "metrics.jsonl"))
  assert after[: len(after) - 2 * (20 - resumed) // 5] == before[: len(after) - 2 * (20 - resumed) // 5]
  assert [(r["step"], r["split"], r["loss"]) for r in after] == [(r["step"], r["split"], r["loss"]) for r in before]


def test_no_readable_checkpoint_stops_every_time_until_restart(run):
  for name in step_folders(run):
    os.remove(os.path.join(run, "checkpoints", name, "_CHECKPOINT_METADATA"))
  metrics = read_bytes(run, "metrics.jsonl")
  with pytest.warns(checkpoint.CheckpointWarning, match="checkpoint metadata is missing or cannot be read"), pytest.raises(checkpoint.CheckpointError, match="--restart"):
    trainer.train_and_evaluate(config_of(), run)
  with pytest.raises(checkpoint.CheckpointError, match="never started again from step 0 by itself.*--restart"):
    trainer.train_and_evaluate(config_of(), run)  # the step folders are aside now: still refused
  shutil.rmtree(os.path.join(run, "unreadable_checkpoints"))
  with pytest.raises(checkpoint.CheckpointError, match="metrics records up to step 20"):
    trainer.train_and_evaluate(config_of(), run)  # the metrics alone are history too
  assert read_bytes(run, "metrics.jsonl") == metrics
  summary = trainer.train_and_evaluate(config_of(), run, restart=True)
  assert summary["resumed_from_step"] == 0
  (previous,) = os.listdir(os.path.join(run, run_folder.PREVIOUS_RUNS))
  assert read_bytes(os.path.join(run, run_folder.PREVIOUS_RUNS, previous), "metrics.jsonl") == metrics


def test_a_second_process_is_refused_naming_the_holder(run, subprocess_env):
  with run_folder.exclusive(run):
    with pytest.raises(run_folder.RunFolderBusyError, match=f"{run} is in use by another process \\(pid {os.getpid()} on host"):
      trainer.train_and_evaluate(config_of(), run)
  # The operating system releases the lock of a killed process.
  code = f"import os, signal\nfrom training import run_folder\nwith run_folder.exclusive({run!r}):\n  os.kill(os.getpid(), signal.SIGKILL)"
  proc = subprocess.run([sys.executable, "-c", code], env=subprocess_env, capture_output=True, timeout=60)
  assert proc.returncode == -signal.SIGKILL, proc.stderr
  with run_folder.exclusive(run):
    pass


BAD_LINES = {  # line of metrics.jsonl: what the warning says
    b'{"step": 3, "loss": 1}\n': "'split' is missing",
    b'{"step": "abc", "split": "train"}\n': "'step' is not a non-negative integer",
    b'{"step": 5, "split": "train", "loss": 0.5, "note": "\xff"}\n': "not UTF-8",
}


def test_bad_metrics_lines_are_skipped_with_a_warning_and_kept(run):
  path = os.path.join(run, "metrics.jsonl")
  with open(path, "rb") as f:
    lines = f.readlines()
  lines[2:2] = list(BAD_LINES)
  with open(path, "wb") as f:
    f.writelines(lines)
  os.remove(os.path.join(run, "summary.json"))
  with pytest.warns(history.HistoryWarning) as warned:
    trainer.train_and_evaluate(config_of(), run)
  for number, problem in enumerate(BAD_LINES.values(), start=3):
    assert any(f"{path}, line {number}: {problem}" in str(w.message) for w in warned), problem
  assert read_bytes(run, "metrics.jsonl") == b"".join(lines)


def test_a_finished_run_rerun_leaves_its_files_as_they_are(run, capsys):
  before = {name: read_bytes(run, name) for name in ("summary.json", "metrics.jsonl", "config.yaml")}
  summary = trainer.train_and_evaluate(config_of(log_every=1, progress_bar=True), run)  # display-only changes
  assert "is finished (step 20); its files are left as they are" in capsys.readouterr().out
  assert {name: read_bytes(run, name) for name in before} == before
  assert summary["steps"] == 20 and summary["resumed_from_step"] == 0


def test_another_config_is_refused_whichever_record_is_left(run):
  checkpoints = step_folders(run)
  for deleted in ("config.yaml", run_folder.IDENTITY_FILE):
    os.remove(os.path.join(run, deleted))
    with pytest.raises(ConfigError, match=r"different config: .* differs in \['model.hidden'\]"):
      trainer.train_and_evaluate(tiny_config(TASK, model={"hidden": 32}, train=TRAIN), run)
  with pytest.raises(ConfigError, match=r"checkpoint 10 differs in \['seed'\]"):
    trainer.train_and_evaluate(tiny_config(TASK, model={"hidden": 8}, train=TRAIN, seed=1), run)
  assert step_folders(run) == checkpoints
  assert not os.path.exists(os.path.join(run, "unreadable_checkpoints"))


def _interrupt_at(monkeypatch, step, signum):
  append = history.append

  def append_then_signal(path, record):
    append(path, record)
    if record["step"] == step and record["split"] == "train":
      os.kill(os.getpid(), signum)

  monkeypatch.setattr(history, "append", append_then_signal)


def test_sigterm_stops_with_one_line(tmp_path, monkeypatch):
  workdir = tmp_path / "run"
  workdir.mkdir()
  (workdir / "config.yaml").write_text("seed: 5\n")  # a run that failed before its first step: no history
  _interrupt_at(monkeypatch, 7, signal.SIGTERM)
  with pytest.raises(interrupts.Interrupted) as info:
    trainer.train_and_evaluate(config_of(log_every=1), str(workdir))
  assert str(info.value) == "interrupted at step 7; last checkpoint at step 5; rerun the same command to resume"
  assert info.value.exit_status == 143


_INTERRUPTED_CLI = """
import os, runpy, signal, sys
from training import history
append = history.append
def append_then_interrupt(path, record):
  append(path, record)
  if record["step"] == 7:
    os.kill(os.getpid(), signal.SIGINT)
history.append = append_then_interrupt
sys.argv = ["train.py", "--config", {config!r}, "--workdir", {workdir!r}]
runpy.run_path({script!r}, run_name="__main__")
"""


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path, subprocess_env):
  config_path = tmp_path / "c.yaml"
  config = {"task": TASK, "model": {"hidden": 8, "num_layers": 1}, "train": {**TRAIN, "log_every": 1, "progress_bar": False}}
  config_path.write_text(yaml.safe_dump(config))
  code = _INTERRUPTED_CLI.format(config=str(config_path), workdir=str(tmp_path / "run"), script=TRAIN_SCRIPT)
  proc = subprocess.run([sys.executable, "-c", code], env=subprocess_env, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 130, proc.stderr[-2000:]
  assert proc.stderr.strip() == "interrupted at step 7; last checkpoint at step 5; rerun the same command to resume"
