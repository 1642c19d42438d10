"""The energy application around a trained run: predict, TensorBoard files, seeds, the default config on other data."""

import csv
import datetime
import glob
import json
import os
import runpy
import shutil
import struct

import numpy as np
import pytest
from tensorboardX.proto import event_pb2
from test_training_loop import REPO
from test_training_loop import write_energy_csv

from training import compare
from training import energy
from training import inference
from training import models
from training import schema
from training import trainer
from training.config_files import load_config


def read_scalars(workdir):
  """{tag: [(step, value)]} from the TensorBoard event files of a run folder (TFRecord framing)."""
  scalars = {}
  for path in sorted(glob.glob(os.path.join(workdir, "events.out.tfevents.*"))):
    with open(path, "rb") as f:
      data = f.read()
    offset = 0
    while offset < len(data):
      (length,) = struct.unpack("<Q", data[offset : offset + 8])
      event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
      offset += 12 + length + 4
      for value in event.summary.value:
        scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
  return scalars


def test_tensorboard_event_files_copy_metrics_jsonl(energy_runs):
  workdir, summary = energy_runs["gru"]
  scalars = read_scalars(workdir)
  for tag in (
    "train/loss",
    "train/learning_rate",
    "train/grad_norm",
    "train/examples_per_second",
    "test/smape",
    "test/same_hour_yesterday_smape",
    "test/ridge_smape",
    "test/ridge_mae",
  ):
    assert tag in scalars, sorted(scalars)
  assert [step for step, _ in scalars["test/smape"]] == [15, 30]
  assert scalars["test/smape"][-1][1] == pytest.approx(summary["test"]["smape"], rel=1e-6)


def test_predict_reproduces_the_test_forecasts(energy_runs, tmp_path):
  workdir, summary = energy_runs["gru"]
  run = inference.load_run(workdir)
  assert run.step == summary["best_checkpoint"]["step"]
  result = inference.forecast(run)
  with np.load(os.path.join(workdir, "test_predictions.npz")) as saved:
    if run.step == summary["steps"]:  # the best checkpoint is the last: the same forecasts as the run's test
      np.testing.assert_allclose(result.forecast, saved["forecast"], rtol=1e-5)
    np.testing.assert_array_equal(result.actual, saved["actual"])
    np.testing.assert_array_equal(result.times, saved["time"])
  # The command line: a CSV of another file in the same layout, never overwriting without --force.
  other = write_energy_csv(tmp_path / "other.csv", num_rows=60)
  main = runpy.run_path(os.path.join(REPO, "experiments", "predict.py"))["main"]
  out = str(tmp_path / "forecast.csv")
  assert len(main(["--workdir", workdir, "--csv", other, "--out", out]).forecast) == 60 - 12
  with open(out) as f:
    rows = list(csv.reader(f))
  assert rows[0] == ["Datetime", "actual", "forecast"] and len(rows) == 49 and rows[1][0] == "2021-01-01 12:00:00"
  with pytest.raises(SystemExit):
    main(["--workdir", workdir, "--csv", other, "--out", out])
  main(["--workdir", workdir, "--csv", other, "--out", out, "--force"])
  # Files that do not fit the run, and folders that are not finished energy runs.
  short = write_energy_csv(tmp_path / "short.csv", num_rows=12)
  with pytest.raises(energy.DataError, match=r"short\.csv: 12 rows, too few .* task\.lookback = 12"):
    inference.forecast(run, short)
  wrong = tmp_path / "wrong.csv"
  wrong.write_text("Datetime,A_MW,B_MW\n2021-01-01 00:00:00,1,2\n")
  with pytest.raises(energy.DataError, match=r"wrong\.csv: expected exactly one column ending in '_MW'"):
    inference.forecast(run, str(wrong))
  with pytest.raises(inference.RunError, match=r"is not a finished energy run.*scaling\.json"):
    inference.load_run(str(tmp_path))


def test_compare_runs_of_several_seeds(energy_runs, tmp_path):
  workdir = str(tmp_path / "seed1")  # a second GRU run: a copy with another seed and score
  shutil.copytree(energy_runs["gru"][0], workdir)
  with open(os.path.join(workdir, "summary.json")) as f:
    summary = json.load(f)
  summary["seed"], summary["test"]["smape"] = 1, summary["test"]["smape"] + 1.0
  with open(os.path.join(workdir, "summary.json"), "w") as f:
    json.dump(summary, f)
  rows = compare.compare([energy_runs["gru"][0], workdir, energy_runs["lstm"][0]], str(tmp_path / "report"))
  assert [(r["model"], r["label"], r["seed"]) for r in rows] == [
    ("gru", "gru 1x16", 0),
    ("gru", "gru 1x16", 1),
    ("lstm", "lstm 1x16", 0),
  ]
  summary = compare.seed_summary(rows)
  assert [(s["model"], s["runs"]) for s in summary] == [("gru 1x16", 2), ("lstm 1x16", 1)]
  # The ridge regression is fitted on the data alone: the same for every run, and counted against each.
  assert rows[0]["ridge_smape"] == rows[2]["ridge_smape"] == summary[0]["ridge_smape"]
  assert summary[0]["runs_beating_ridge"] == sum(r["smape"] < r["ridge_smape"] for r in rows[:2])
  assert summary[0]["smape"] == pytest.approx((rows[0]["smape"] + rows[1]["smape"]) / 2)
  assert summary[0]["smape_std"] == pytest.approx(abs(rows[0]["smape"] - rows[1]["smape"]) / np.sqrt(2))
  with open(tmp_path / "report" / "comparison.md") as f:
    assert "| gru 1x16 | 2 |" in f.read()
  with open(tmp_path / "report" / "comparison.json") as f:
    assert len(json.load(f)["runs"]) == 3


def test_planned_runs_of_compare_energy():
  planned = runpy.run_path(os.path.join(REPO, "experiments", "compare_energy.py"))["planned_runs"]
  assert planned(["configs/energy_default.yaml"], ["gru", "lstm"], [0, 1])[1:3] == [
    ("configs/energy_default.yaml", os.path.join("runs", "energy_default_gru_seed1"), ["model.kind=gru", "seed=1"]),
    ("configs/energy_default.yaml", os.path.join("runs", "energy_default_lstm_seed0"), ["model.kind=lstm", "seed=0"]),
  ]
  assert planned(["configs/energy_gru.yaml"], None, None) == [
    ("configs/energy_gru.yaml", os.path.join("runs", "energy_gru"), [])
  ]
  assert planned(["configs/energy_gru.yaml"], None, [3], "runs/other")[0][1] == os.path.join(
    "runs/other", "energy_gru_seed3"
  )


def test_highway_starts_from_the_persistence_forecast_and_adds_to_the_plain_model():
  import jax  # pylint: disable=g-import-not-at-top

  x = jax.random.normal(jax.random.key(1), (3, 5, 2))  # [B, T, I]
  model = models.SequenceModel(kind="gru", hidden=4, num_layers=1, highway=3)
  params = model.init(jax.random.key(0), x)["params"]
  np.testing.assert_array_equal(params["highway"]["kernel"], [[0.0], [0.0], [1.0]])
  apply = jax.jit(model.apply)
  # LSTNet's output: the recurrent part plus a linear term of the last K values of feature 0 (x_T at first).
  recurrent_only = {**params, "highway": jax.tree_util.tree_map(jax.numpy.zeros_like, params["highway"])}
  np.testing.assert_allclose(
    apply({"params": params}, x) - apply({"params": recurrent_only}, x), x[:, -1:, 0], rtol=1e-6
  )
  with pytest.raises(ValueError, match=r"highway \(6\) is longer than the input sequence \(T=5\)"):
    models.SequenceModel(kind="lstm", hidden=4, num_layers=1, highway=6).init(jax.random.key(0), x)


@pytest.mark.slow
def test_default_model_beats_ridge_and_every_naive_forecast_on_another_load_file(tmp_path):
  """The default config on a transformed copy of the real data: other column, level, scale, dates and test months.

  The last 2000 hours are cut off, so the test part is August to October 2014 instead of September to December.
  Half the default schedule (10 epochs) keeps the test as short as it was; the full schedule is measured in
  experiments/results/energy_default_seeds.
  """
  times, load = energy.read_hourly_csv(os.path.join(REPO, "data", "PTELD_hourly.csv"))
  path = tmp_path / "OTHER_hourly.csv"
  with open(path, "w") as f:
    f.write("Datetime,OTHER_MW\n")
    for t, value in zip(times[:-2000], load[:-2000]):
      f.write(f"{t + datetime.timedelta(weeks=300)},{0.6 * value + 200:.2f}\n")  # weekdays kept
  config = load_config(
    schema.TrainConfig,
    os.path.join(REPO, "configs", "energy_default.yaml"),
    [f"task.csv_files=[{path}]", "train.num_epochs=10", "train.progress_bar=false"],
  )
  test = trainer.train_and_evaluate(config, str(tmp_path / "run"))["test"]
  for name in ("ridge", *energy.NAIVE_LAGS):
    assert test["smape"] < test[f"{name}_smape"], test


@pytest.mark.slow
@pytest.mark.skipif(
  not os.path.exists(os.path.join(REPO, "data", "EWD_hourly.csv")),
  reason="data/EWD_hourly.csv is built by data/make_england_wales_data.sh, not shipped",
)
def test_default_config_beats_ridge_on_england_and_wales(tmp_path):
  """Another grid, year and season (data/README.md): the default config as it is beats the ridge regression fitted there."""
  config = load_config(
    schema.TrainConfig,
    os.path.join(REPO, "configs", "energy_default.yaml"),
    [f"task.csv_files=[{os.path.join(REPO, 'data', 'EWD_hourly.csv')}]", "train.progress_bar=false"],
  )
  test = trainer.train_and_evaluate(config, str(tmp_path / "run"))["test"]
  assert test["smape"] < test["ridge_smape"], test
