"""A trained day-ahead run in use: the next day's quantiles from recent load (predict.py), ONNX and StableHLO."""

import csv
import datetime
import os
import pathlib
import re
import runpy
import shutil

import jax
import numpy as np
import pytest
from test_dayahead import REPO
from test_dayahead import START
from test_dayahead import write_load_csv

from jaxgru import export
from training import dayahead
from training import dayahead_export
from training import forecaster
from training import inference
from training import scaling

ort = pytest.importorskip("onnxruntime")


def read_rows(path):
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


@pytest.fixture
def predict(dayahead_run, tmp_path):
  """``(main, workdir)``: predict.py's main and a copy of the shared run folder."""
  workdir = str(tmp_path / "run")
  shutil.copytree(dayahead_run[0], workdir)
  return runpy.run_path(os.path.join(REPO, "experiments", "predict.py"))["main"], workdir


def test_predict_reproduces_a_test_issue_and_forecasts_the_next_day(predict, dayahead_run, tmp_path):
  main, workdir = predict
  summary = dayahead_run[1]
  assert summary["best_checkpoint"]["step"] == summary["steps"]  # the checkpoint that made test_forecasts.csv
  saved = read_rows(os.path.join(workdir, "test_forecasts.csv"))
  levels = ("q0.1", "q0.5", "q0.9")
  # The first test issue again, from the run's own file: the same quantiles (to the CSV's 6 digits).
  out = str(tmp_path / "issue.csv")
  result = main(["--workdir", workdir, "--issue-time", saved[0]["issue_time"], "--out", out])
  rows = read_rows(out)
  assert list(rows[0]) == ["issue_time", "target_time", "lead", *levels] and len(rows) == 24
  for mine, theirs in zip(rows, saved[:24]):
    assert [mine[k] for k in ("issue_time", "target_time", "lead")] == [
      theirs[k] for k in ("issue_time", "target_time", "lead")
    ]
    np.testing.assert_allclose([float(mine[k]) for k in levels], [float(theirs[k]) for k in levels], rtol=2e-5)
  assert np.all(np.diff(result.quantiles, axis=1) >= 0)
  # By default: the day after the file's last hour (2021-04-09 23:00), into WORKDIR/forecast.csv.
  main(["--workdir", workdir])
  rows = read_rows(os.path.join(workdir, "forecast.csv"))
  assert [r["target_time"] for r in rows] == [f"2021-04-10 {h:02d}:00:00" for h in range(24)]
  assert {r["issue_time"] for r in rows} == {"2021-04-10 00:00:00"}
  # A file of recent load that ends at 13:00: issued at its last midnight; the 14 hours after it are not read.
  recent = write_load_csv(tmp_path / "recent.csv", days=9)
  with open(recent, "a") as f:
    f.writelines(f"{START + datetime.timedelta(days=9, hours=h):%Y-%m-%d %H:%M:%S},1000\n" for h in range(14))
  result = main(["--workdir", workdir, "--csv", recent, "--out", str(tmp_path / "recent_forecast.csv")])
  assert (
    result.issue_time == START + datetime.timedelta(days=9) and str(result.target_times[-1]) == "2021-03-10T23:00:00"
  )


@pytest.mark.parametrize(
  "argv,message",
  [
    (["--issue-time", "2021-04-05 10:00"], "the run issues its forecasts at 00:00 (task.issue_hour)"),
    (["--issue-time", "2021-03-02 00:00"], "the forecast reads the 48 hours before it (task.lookback)"),
    (["--issue-time", "April 5"], "'April 5' is not a time; expected e.g. '2014-12-01 00:00'"),
    (["--csv", "SHORT"], "too few for a forecast issued at 00:00 (task.issue_hour)"),
    (["--out", "EXISTING"], "already exists (a complete forecast); choose another --out or pass --force"),
    (["--export", "onnx", "--issue-time", "2021-04-05 00:00"], "--export writes the model: pass one of them"),
  ],
)
def test_bad_predict_arguments_write_nothing(predict, tmp_path, capsys, argv, message):
  main, workdir = predict
  short = write_load_csv(tmp_path / "short.csv", days=1)  # 24 hours: less than the lookback
  (tmp_path / "existing.csv").write_text("mine\n")
  argv = [{"SHORT": short, "EXISTING": str(tmp_path / "existing.csv")}.get(a, a) for a in argv]
  before = sorted(os.listdir(workdir))
  with pytest.raises(SystemExit) as stop:
    main(["--workdir", workdir, *argv])
  said = stop.value.code if isinstance(stop.value.code, str) else capsys.readouterr().err
  assert message in said
  assert sorted(os.listdir(workdir)) == before and (tmp_path / "existing.csv").read_text() == "mine\n"


def test_issue_time_is_refused_for_a_one_step_run(energy_runs, tmp_path):
  main = runpy.run_path(os.path.join(REPO, "experiments", "predict.py"))["main"]
  with pytest.raises(SystemExit, match="--issue-time is for day-ahead runs"):
    main(["--workdir", energy_runs["gru"][0], "--issue-time", "2021-01-02 00:00", "--out", str(tmp_path / "f.csv")])
  assert not os.listdir(tmp_path)


def test_the_exported_run_forecasts_what_predict_forecasts(predict):
  main, workdir = predict
  result = main(["--workdir", workdir])
  for fmt in ("onnx", "stablehlo"):
    assert main(["--workdir", workdir, "--export", fmt]) == os.path.join(workdir, f"forecaster.{fmt}")
  # The lines of docs/guide/export.md, on this run: ONNX Runtime, NumPy and holidays reproduce forecast.csv.
  guide = pathlib.Path(REPO, "docs", "guide", "export.md").read_text(encoding="utf-8")
  (lines,) = [block for block in re.findall(r"```py\n(.*?)```", guide, flags=re.S) if "energy_dayahead" in block]
  assert 'workdir = "runs/energy_dayahead"' in lines
  namespace = {}
  exec(lines.replace('"runs/energy_dayahead"', repr(workdir)), namespace)  # pylint: disable=exec-used
  np.testing.assert_allclose(namespace["quantiles"][0], result.quantiles, rtol=1e-5)
  assert namespace["meta"]["holidays"] == "PT" and namespace["meta"]["quantiles"] == "0.1,0.5,0.9"
  feeds = (namespace["load"], namespace["calendar"][None].astype(np.float32))
  stablehlo = export.load_stablehlo(os.path.join(workdir, "forecaster.stablehlo"))
  np.testing.assert_allclose(np.asarray(stablehlo.call(*feeds))[0], result.quantiles, rtol=1e-5)


@pytest.mark.parametrize(
  "head,gap,levels,highway,layers",
  [("direct", 0, (0.1, 0.5, 0.9), 48, 1), ("decoder", 14, (0.5, 0.75, 0.9), 0, 2), ("direct", 7, (0.05, 0.5), 24, 2)],
)
def test_onnx_forecaster_equals_jax_for_every_head_gap_and_level_set(head, gap, levels, highway, layers):
  model = forecaster.DayAheadModel(
    hidden=8, num_layers=layers, lookback=48, gap=gap, horizon=24, levels=levels, head=head, highway=highway
  )
  t = 48 + gap + 24
  rng = np.random.default_rng(0)
  variables = model.init(jax.random.key(0), np.zeros((1, t, len(dayahead.INPUTS)), np.float32))
  s = scaling.DayAheadScaling(
    files=("x.csv",),
    lookback=48,
    gap=gap,
    horizon=24,
    issue_hour=(24 - gap) % 24,
    levels=levels,
    holidays=None,
    holidays_subdivision=None,
    load_offset=np.array([900.0]),
    load_scale=np.array([150.0]),
  )
  run = inference.Run("x", model, variables, None, s, 0)
  load = (900 + 150 * rng.normal(size=(3, 48))).astype(np.float32)
  calendar = dayahead.calendar_columns(
    [START + datetime.timedelta(hours=h) for h in range(t)], frozenset({START.date()})
  )
  calendar = np.stack([calendar, np.roll(calendar, 5, axis=0), calendar])  # [B, T + G + F, 10]
  expected = np.asarray(dayahead_export.forecast_function(run)(load, calendar))  # [B, F, Q]
  assert expected.shape == (3, 24, len(levels)) and np.all(np.diff(expected, axis=-1) > 0)
  model_onnx = dayahead_export.forecaster_onnx(run)
  session = ort.InferenceSession(model_onnx.SerializeToString())
  (got,) = session.run(None, {dayahead_export.LOAD: load, dayahead_export.CALENDAR: calendar})
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-3)
