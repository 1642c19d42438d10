"""Config files of training runs: validation errors name the key and the file, nothing is written."""

import glob
import os
import runpy

import pytest

from training.config_files import load_config
from training.schema import TrainConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_SCRIPT = os.path.join(REPO, "experiments", "train.py")

VALID = """\
task: {kind: adding, length: 8, test_size: 16}
model: {hidden: 8, num_layers: 1}
train: {batch_size: 4, num_steps: 2, progress_bar: false}
"""


def run_cli(*argv):
  main = runpy.run_path(TRAIN_SCRIPT)["main"]  # the entry point, without running it at import
  return main(list(argv))


@pytest.mark.parametrize(
  "text, overrides, message",
  [
    (VALID.replace("hidden: 8", "hiden: 8"), [], r"unknown key 'model.hiden'"),
    (VALID.replace("batch_size: 4", "batch_size: many"), [], r"key 'train.batch_size': .*integer"),
    (VALID.replace("length: 8", "length: -3"), [], r"key 'task.adding.length': .*greater than 0"),
    (VALID.replace("task: {kind: adding, length: 8, test_size: 16}\n", ""), [], r"missing required key 'task'"),
    ("task: {kind: energy}\n" + VALID.split("\n", 1)[1], [], r"missing required key 'task.energy.csv_files'"),
    (VALID, ["optimizer.name=lion"], r"key 'optimizer.name': Input should be 'adam', 'adamw' or 'sgd'"),
    (VALID, ["train.num_epochs=3"], r"exactly one of train.num_epochs and train.num_steps"),
    (VALID, ["task.kind=pixels"], r"key 'task'.*'energy', 'dayahead', 'adding', 'digits'"),
    (VALID, ["train.num_step=3"], r"unknown key 'train.num_step'"),
    (VALID, ["seed=-1"], r"key 'seed': .*greater than or equal to 0"),
    (VALID, ["optimizer.learning_rate=.inf"], r"key 'optimizer.learning_rate': .*finite number"),
    # Across sections, every broken constraint at once.
    (
      VALID,
      ["model.highway=9", "optimizer.schedule=warmup_cosine", "optimizer.warmup_steps=2"],
      r"model.highway \(9\) reads more steps than the input has: task.length is 8; .*"
      r"optimizer.warmup_steps \(2\) must be shorter than the run \(train.num_steps: 2\)",
    ),
  ],
)
def test_config_errors_name_key_and_file_and_write_nothing(tmp_path, text, overrides, message):
  config_path = tmp_path / "bad.yaml"
  config_path.write_text(text)
  workdir = tmp_path / "run"
  with pytest.raises(SystemExit, match=message) as info:  # one line: "error: <message>"
    run_cli("--config", str(config_path), "--workdir", str(workdir), *overrides)
  assert str(config_path) in str(info.value)
  assert not workdir.exists()


def test_the_default_energy_config_with_a_short_lookback_is_refused_whole(tmp_path):
  """Issue 28's case: task.lookback=24 beside the default model.highway: 48, named before any file is written."""
  workdir = tmp_path / "run"
  with pytest.raises(
    SystemExit, match=r"model.highway \(48\) reads more steps than the input has: task.lookback is 24"
  ):
    run_cli(
      "--config", os.path.join(REPO, "configs", "energy_default.yaml"), "--workdir", str(workdir), "task.lookback=24"
    )
  assert not workdir.exists()


def test_data_errors_stop_before_anything_is_written(tmp_path):
  config_path = tmp_path / "energy.yaml"
  config_path.write_text(
    f"task: {{kind: energy, csv_files: [{tmp_path}/missing.csv]}}\ntrain: {{batch_size: 4, num_epochs: 1}}\n"
  )
  with pytest.raises(SystemExit, match="missing.csv' does not exist"):
    run_cli("--config", str(config_path), "--workdir", str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "configs", "*.yaml"))), ids=os.path.basename)
def test_shipped_configs_validate_and_say_how_to_run(path):
  config = load_config(TrainConfig, path)
  with open(path) as f:
    header = [line for line in f.read().splitlines() if line.startswith("#")]
  assert any("experiments/train.py --config configs/" + os.path.basename(path) in line for line in header)
  assert any("Expect" in line for line in header), "each config states the result to expect"
  assert config.task.kind in ("energy", "dayahead", "adding", "digits")


def test_a_config_path_that_is_a_directory_or_not_text_is_named(tmp_path):
  with pytest.raises(SystemExit, match=f"config file '{tmp_path}' is a directory"):
    run_cli("--config", str(tmp_path), "--workdir", str(tmp_path / "run"))
  config_path = tmp_path / "binary.yaml"
  config_path.write_bytes(b"seed: 1\n\xff\xfe\n")
  with pytest.raises(SystemExit, match=f"{config_path}: not UTF-8 text"):
    run_cli("--config", str(config_path), "--workdir", str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


def test_resolved_config_is_saved_and_reloads(tmp_path):
  config_path = tmp_path / "ok.yaml"
  config_path.write_text(VALID)
  run_cli("--config", str(config_path), "model.hidden=6", "--workdir", str(tmp_path / "run"))  # overrides anywhere
  saved = load_config(TrainConfig, tmp_path / "run" / "config.yaml")
  assert saved == load_config(TrainConfig, config_path, ["model.hidden=6"])
  assert saved.model.hidden == 6 and saved.optimizer.name == "adam"  # defaults are written out
  with pytest.raises(SystemExit, match=r"different config: .* differs in \['model.hidden'\]"):
    run_cli("--config", str(config_path), "--workdir", str(tmp_path / "run"), "model.hidden=7")
  # What is only shown may change: the finished run is recognized and left as it is.
  summary = run_cli(
    "--config", str(config_path), "--workdir", str(tmp_path / "run"), "model.hidden=6", "train.log_every=7"
  )
  assert summary["steps"] == 2 and summary["resumed_from_step"] == 0


def test_epochs_need_a_fixed_training_set(tmp_path):
  config_path = tmp_path / "adding.yaml"
  config_path.write_text(VALID.replace("num_steps: 2", "num_epochs: 2"))
  with pytest.raises(SystemExit, match="'adding' has no fixed training set: set train.num_steps"):
    run_cli("--config", str(config_path), "--workdir", str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()
