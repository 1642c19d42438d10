"""A run folder never loses a good checkpoint or a metrics line, and never restarts from step 0 by itself.

A full disk, a read-only folder and bad input end with one line; files are written whole or not at all.

One tiny finished run is trained once per module and copied into each test.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest
import yaml

from training import checkpoint
from training import history
from training import interrupts
from training import run_folder
from training import trainer
from training.config_files import ConfigError
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
  with (
    pytest.warns(checkpoint.CheckpointWarning, match="checkpoint metadata is missing or cannot be read"),
    pytest.raises(checkpoint.CheckpointError, match="--restart"),
  ):
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
    with pytest.raises(
      run_folder.RunFolderBusyError, match=f"{run} is in use by another process \\(pid {os.getpid()} on host"
    ):
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


@pytest.mark.parametrize(
  "name, content, why",
  [
    ("config.yaml", "", "it is empty"),
    ("config.yaml", "seed: [0\n", "while parsing"),
    (run_folder.IDENTITY_FILE, '{"config": {"seed"', "Expecting"),
  ],
)
def test_a_damaged_record_of_the_config_is_named_as_damaged(run, name, content, why):
  path = os.path.join(run, name)
  with open(path, "w", encoding="utf-8") as f:
    f.write(content)
  others = "identity.json" if name == "config.yaml" else "config.yaml"
  with pytest.raises(
    ConfigError,
    match=rf"{re.escape(path)} is damaged \(.*{why}.*\)\. The other records of the run's "
    rf"config \(.*{others}, checkpoint 10, checkpoint 15, checkpoint 20\) match this config\. "
    r"Nothing was changed: move the damaged file\(s\) out of",
  ):
    trainer.train_and_evaluate(config_of(), run)
  assert read_bytes(run, name) == content.encode()
  os.remove(path)  # as the message says; the finished run is then recognized
  assert trainer.train_and_evaluate(config_of(), run)["steps"] == 20


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
  config = {
    "task": TASK,
    "model": {"hidden": 8, "num_layers": 1},
    "train": {**TRAIN, "log_every": 1, "progress_bar": False},
  }
  config_path.write_text(yaml.safe_dump(config))
  code = _INTERRUPTED_CLI.format(config=str(config_path), workdir=str(tmp_path / "run"), script=TRAIN_SCRIPT)
  proc = subprocess.run([sys.executable, "-c", code], env=subprocess_env, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 130, proc.stderr[-2000:]
  assert proc.stderr.strip() == "interrupted at step 7; last checkpoint at step 5; rerun the same command to resume"


def test_a_full_disk_or_a_read_only_folder_ends_with_one_line_and_loses_nothing(run, monkeypatch):
  from training import files  # pylint: disable=g-import-not-at-top

  os.remove(os.path.join(run, "summary.json"))
  shutil.rmtree(os.path.join(run, "checkpoints", "20"))  # stopped after checkpoint 15
  before = {name: read_bytes(run, name) for name in ("metrics.jsonl", "config.yaml", run_folder.IDENTITY_FILE)}
  # A disk still full from the stop: refused before training, with the room the next checkpoint needs.
  monkeypatch.setattr(files, "free_bytes", lambda folder: 1000)
  with pytest.raises(files.DiskFault) as info:
    trainer.train_and_evaluate(config_of(), run)
  assert str(info.value).startswith("no space left on device while writing the next checkpoint (checkpoint 15 takes ")
  assert str(info.value).endswith(
    f"in {run}/checkpoints (1.0 kB free); free space in {run}/checkpoints and rerun the same command to resume from checkpoint 15"
  )
  # A read-only folder or an immutable file: named before the run starts.
  monkeypatch.undo()
  real_mkstemp = files.tempfile.mkstemp

  def read_only(*args, dir=None, **kwargs):  # pylint: disable=redefined-builtin
    if dir == run:
      raise PermissionError(13, "Permission denied", dir)
    return real_mkstemp(*args, dir=dir, **kwargs)

  monkeypatch.setattr(files.tempfile, "mkstemp", read_only)
  with pytest.raises(
    files.DiskFault,
    match=f"^permission denied while writing a test file in {run}; make it writable .* "
    "rerun the same command to resume from checkpoint 15$",
  ):
    trainer.train_and_evaluate(config_of(), run)
  monkeypatch.undo()

  # The disk fills during a save: orbax's writer fails with TensorStore's message, as it does on a real full disk.
  def full(*args, **kwargs):
    raise ValueError(
      "RESOURCE_EXHAUSTED: Error writing local file: Failed to write 315 bytes: No space left on device [os_error_code='28']"
    )

  monkeypatch.setattr(checkpoint.ocp.CheckpointManager, "save", full)
  with pytest.raises(
    files.DiskFault,
    match=f"^no space left on device while writing checkpoint 20 in {run}/checkpoints "
    r"\(.* free\); free space in .* to resume from checkpoint 15$",
  ):
    trainer.train_and_evaluate(config_of(), run)
  monkeypatch.undo()
  assert step_folders(run) == ["10", "15"]
  kept = [line for line in before["metrics.jsonl"].splitlines(keepends=True) if json.loads(line)["step"] <= 15]
  assert read_bytes(run, "metrics.jsonl").startswith(b"".join(kept))  # the lines before the stop, byte for byte
  assert {name: read_bytes(run, name) for name in ("config.yaml", run_folder.IDENTITY_FILE)} == {
    name: before[name] for name in ("config.yaml", run_folder.IDENTITY_FILE)
  }
  # With room again, the same call resumes from checkpoint 15.
  assert trainer.train_and_evaluate(config_of(), run)["resumed_from_step"] == 15


def test_files_are_written_whole_or_not_at_all(tmp_path):
  from training import files  # pylint: disable=g-import-not-at-top

  path = str(tmp_path / "forecast.csv")
  with files.atomic_write(path) as f:
    f.write("complete\n")
  with pytest.raises(RuntimeError), files.atomic_write(path) as f:  # stopped half-way: the old file stays
    f.write("half")
    raise RuntimeError("killed")
  assert os.listdir(tmp_path) == ["forecast.csv"] and read_bytes(tmp_path, "forecast.csv") == b"complete\n"
  (tmp_path / "forecast.csv.x1y2.incomplete").write_text("half")  # what a kill -9 leaves: never the final name
  assert files.leftovers(path) == [str(tmp_path / "forecast.csv.x1y2.incomplete")]
  with files.atomic_write(path) as f:
    f.write("again\n")
  assert os.listdir(tmp_path) == ["forecast.csv"]  # the next complete write removes the leftover
  with pytest.raises(files.DiskFault, match=f"^no space left on device while writing forecast.csv in {tmp_path} "):
    with files.atomic_write(path) as f:
      raise OSError(28, "No space left on device")
  assert read_bytes(tmp_path, "forecast.csv") == b"again\n"


# Each bad input to the two commands, run in one child Python that never loads JAX.
_BAD_INPUTS = """
import json, runpy, sys
results = []
for script, argv in json.loads(sys.argv[1]):
  try:
    runpy.run_path(script)["main"](argv)  # the entry point; its __main__ block prints the line
    results.append((0, None))
  except SystemExit as e:
    results.append((e.code, None))
print(json.dumps({"results": results, "jax": "jax" in sys.modules}))
"""


def test_bad_input_to_the_commands_ends_with_one_line_before_jax_loads(tmp_path, subprocess_env):
  from_main = os.path.join(REPO, "tests", "data", "run_from_main_80e37e2")
  shutil.copytree(from_main, tmp_path / "old")
  run = str(tmp_path / "old" / "run")
  predict = os.path.join(REPO, "experiments", "predict.py")
  (tmp_path / "gap.csv").write_text("Datetime,TEST_MW\n2021-01-01 00:00:00,1\n2021-01-01 02:00:00,2\n")
  (tmp_path / "two.csv").write_text("Datetime,A_MW,B_MW\n2021-01-01 00:00:00,1,2\n")
  (tmp_path / "text.csv").write_text("Datetime,TEST_MW\n2021-01-01 00:00:00,many\n")
  (tmp_path / "done.csv").write_text("Datetime,actual,forecast\n")
  (tmp_path / "bad.yaml").write_text("task: {kind: adding}\ntrain: {batch_size: 4, num_step: 2}\n")
  cases = {  # argv: the one line expected
    (predict, "--workdir", str(tmp_path / "nope")): f"error: run folder {tmp_path}/nope does not exist",
    (predict, "--workdir", str(tmp_path)): f"error: {tmp_path} is not a finished energy run: config.yaml, scaling.json",
    (
      predict,
      "--workdir",
      run,
      "--csv",
      str(tmp_path / "gap.csv"),
      "--out",
      str(tmp_path / "f.csv"),
    ): "gap.csv, line 3: timestamp",
    (
      predict,
      "--workdir",
      run,
      "--csv",
      str(tmp_path / "two.csv"),
      "--out",
      str(tmp_path / "f.csv"),
    ): "pick the load column with --value-column NAME",
    (
      predict,
      "--workdir",
      run,
      "--csv",
      str(tmp_path / "text.csv"),
      "--out",
      str(tmp_path / "f.csv"),
    ): "text.csv, line 2: cannot parse",
    (
      predict,
      "--workdir",
      run,
      "--out",
      str(tmp_path / "done.csv"),
    ): "already exists (a complete forecast); choose another --out or pass --force",
    (
      TRAIN_SCRIPT,
      "--config",
      str(tmp_path / "bad.yaml"),
      "--workdir",
      str(tmp_path / "r"),
    ): "unknown key 'train.num_step'",
  }
  code = [sys.executable, "-c", _BAD_INPUTS, json.dumps([(argv[0], list(argv[1:])) for argv in cases])]
  proc = subprocess.run(
    code, env=subprocess_env, capture_output=True, text=True, timeout=120, cwd=str(tmp_path / "old")
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert not out["jax"]  # every check above ran before JAX was imported
  for (status, _), expected in zip(out["results"], cases.values()):
    assert isinstance(status, str) and status.startswith("error: ") and "\n" not in status and expected in status, (
      status,
      expected,
    )
  assert not (tmp_path / "f.csv").exists() and not (tmp_path / "r").exists()
