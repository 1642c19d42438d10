"""The day-ahead task: its windows, baselines, quantiles, model, config checks and a whole run."""

import csv
import datetime
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from training import dayahead
from training import dayahead_baselines
from training import dayahead_report
from training import forecaster
from training import quantiles
from training import step
from training import tasks
from training import trainer
from training.config_files import ConfigError
from training_helpers import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START = datetime.datetime(2021, 3, 1)  # a Monday


def write_load_csv(path, days=40, value=None):
  """A daily and weekly load shape with noise; ``value(row)`` replaces it (e.g. the row number)."""
  rng = np.random.default_rng(0)
  with open(path, "w") as f:
    f.write("Datetime,TEST_MW\n")
    for row in range(24 * days):
      t = START + datetime.timedelta(hours=row)
      load = 1000 + 200 * np.sin(2 * np.pi * t.hour / 24) - 150 * (t.weekday() >= 5) + rng.normal(0, 10)
      f.write(f"{t:%Y-%m-%d %H:%M:%S},{value(row) if value else load:.3f}\n")
  return str(path)


@pytest.mark.parametrize("issue_hour", [0, 10])
def test_windows_read_the_lookback_and_predict_the_next_day(tmp_path, issue_hour):
  path = write_load_csv(tmp_path / "X_hourly.csv", days=20, value=float)  # load = row number
  data = dayahead.load_dayahead([path], lookback=30, horizon=36, issue_hour=issue_hour, test_days=3, scaling="minmax")
  gap = (24 - issue_hour) % 24
  assert data.gap == gap
  origins = data.test_origins
  assert [str(t)[11:] for t in data.times[origins]] == ["00:00:00"] * 3  # the targets start at midnight
  assert np.all(data.train_origins + 36 <= origins[0])  # every training target before the first test hour
  assert [str(t)[11:13] for t in data.issue_times(origins)] == [f"{issue_hour:02d}"] * 3
  x, y = data.windows(np.concatenate([data.train_origins[:2], origins]))
  both = np.concatenate([data.train_origins[:2], origins])
  assert x.shape == (5, 30 + gap + 36, len(dayahead.INPUTS)) and y.shape == (5, 36)
  load = data.unscale(x[:, :30, 0], both)  # [B, T], the row numbers
  np.testing.assert_allclose(load, both[:, None] - gap + np.arange(-30, 0), atol=1e-3)
  np.testing.assert_allclose(data.unscale(y, both), both[:, None] + np.arange(36), atol=1e-3)
  assert np.all(x[:, 30:, :2] == 0) and np.all(x[:, :30, 1] == 1)  # no load known after the issue
  hours = (both[:, None] + np.arange(-30 - gap, 36)) % 24  # row 0 is 00:00
  np.testing.assert_allclose(x[..., 2], np.sin(2 * np.pi * hours / 24), atol=1e-6)


@pytest.mark.parametrize("issue_hour", [0, 10, 23])
def test_seasonal_naive_is_the_latest_same_hour_known_at_issue(tmp_path, issue_hour):
  path = write_load_csv(tmp_path / "X_hourly.csv", days=24, value=float)
  data = dayahead.load_dayahead([path], lookback=170, horizon=48, issue_hour=issue_hour, test_days=2)
  last_known = data.test_origins - data.gap - 1  # the row of the last hour known at issue
  for period in (24, 168):
    naive = data.seasonal_naive(data.test_origins, period)
    for i, origin in enumerate(data.test_origins):
      for lead in range(48):
        target = origin + lead
        expected = max(r for r in range(last_known[i] + 1) if (target - r) % period == 0)
        assert naive[i, lead] == expected


def test_holidays_are_a_calendar_feature(tmp_path):
  path = write_load_csv(tmp_path / "X_hourly.csv", days=40)
  data = dayahead.load_dayahead([path], lookback=24, holidays="PT", test_days=2)
  holiday_days = {str(t)[:10] for t, flag in zip(data.times, data.calendar[:, -1]) if flag}
  assert holiday_days == {"2021-04-02", "2021-04-04"}  # Good Friday and Easter, within March-April 2021


def test_noncrossing_quantiles_and_the_pinball_loss_against_a_plain_loop():
  levels = (0.05, 0.25, 0.5, 0.9)
  raw = np.random.default_rng(0).normal(0, 3, (5, 7, 4)).astype(np.float32)
  q = np.asarray(quantiles.noncrossing(jnp.asarray(raw), levels))
  assert np.all(np.diff(q, axis=-1) > 0)
  np.testing.assert_array_equal(q[..., 2], raw[..., 2])  # the median is the raw median
  y = np.random.default_rng(1).normal(0, 3, (5, 7)).astype(np.float32)
  total = 0.0
  for b in range(5):
    for f in range(7):
      for j, tau in enumerate(levels):
        e = y[b, f] - q[b, f, j]
        total += tau * e if e >= 0 else (tau - 1) * e
  expected = total / q.size
  np.testing.assert_allclose(
    quantiles.pinball_loss(jnp.asarray(q.reshape(5, -1)), jnp.asarray(y), levels), expected, 1e-5
  )
  np.testing.assert_allclose(quantiles.pinball(q.reshape(-1, 4), y.reshape(-1), levels), expected, 1e-5)


def test_raw_for_inverts_noncrossing():
  levels = (0.05, 0.1, 0.5, 0.8, 0.9)
  q = np.sort(np.random.default_rng(0).normal(size=(4, 6, 5)), axis=-1)  # [B, F, Q]
  raw = quantiles.raw_for(q, levels)
  np.testing.assert_allclose(raw[..., 2], q[..., 2])
  np.testing.assert_allclose(np.asarray(quantiles.noncrossing(jnp.asarray(raw), levels)), q, atol=1e-5)


def test_residual_intervals_cover_their_own_residuals():
  rng = np.random.default_rng(0)
  residuals = rng.normal(0, 2, (4000, 3))
  q = quantiles.residual_quantiles(np.zeros((4000, 3)), residuals, (0.1, 0.5, 0.9))
  coverage = quantiles.interval_metrics(q.reshape(-1, 3), residuals.reshape(-1), (0.1, 0.5, 0.9))["coverage_80"]
  assert 79.0 <= coverage <= 81.0
  np.testing.assert_array_equal(q[..., 1], 0.0)  # the median is the point forecast


@pytest.mark.parametrize("head,gap", [("direct", 0), ("decoder", 14)])
def test_the_highway_starts_at_the_same_hour_of_the_latest_known_day(head, gap):
  model = forecaster.DayAheadModel(
    hidden=4, lookback=48, gap=gap, horizon=30, levels=(0.1, 0.5, 0.9), head=head, highway=48
  )
  x = jax.random.normal(jax.random.key(0), (2, 48 + gap + 30, len(dayahead.INPUTS)))
  params = model.init(jax.random.key(1), x)["params"]
  params = {**params, "head": jax.tree.map(jnp.zeros_like, params["head"])}
  q = np.asarray(model.apply({"params": params}, x)).reshape(2, 30, 3)
  leads = np.arange(1, 31)
  rows = 48 + gap + leads - 1 - dayahead.seasonal_lag(24, gap, leads)  # each target's naive row in the window
  np.testing.assert_allclose(q[..., 1], np.asarray(x)[:, rows, 0], atol=1e-6)
  assert np.all(np.diff(q, axis=-1) > 0)


def dayahead_task(csv_path, **task):
  return {"kind": "dayahead", "csv_files": [csv_path], "lookback": 48, "test_days": 3, **task}


@pytest.mark.parametrize(
  "task,model,message",
  [
    ({"quantiles": [0.9, 0.5, 0.1]}, {}, "must be distinct and increasing"),
    ({"quantiles": [0.0, 0.5, 1.0]}, {}, "task.dayahead.quantiles.0': Input should be greater than 0"),
    ({"quantiles": [0.1, 0.9]}, {}, "must include 0.5"),
    ({"issue_hour": 24}, {}, "task.dayahead.issue_hour': Input should be less than or equal to 23"),
    ({"holidays": "XX"}, {}, "unknown country 'XX'"),
    ({"holidays": "GB", "holidays_subdivision": "QQ"}, {}, "no subdivision 'QQ'"),
    ({"holidays_subdivision": "ENG"}, {}, "needs task.holidays"),
    ({}, {"kind": "lstm"}, "not available for the dayahead task"),
    ({}, {"highway": 49}, "model.highway (49)"),
    (
      {"highway_start": "ridge"},
      {"highway": 0},
      "task.highway_start (ridge) starts the highway, but model.highway is 0",
    ),
  ],
)
def test_bad_day_ahead_configs_are_refused_when_the_config_loads(tmp_path, task, model, message):
  with pytest.raises(ConfigError) as error:
    tiny_config(dayahead_task("x.csv", **task), model=model)
  assert message in str(error.value)
  assert not os.listdir(tmp_path)


@pytest.mark.parametrize(
  "task,message",
  [({"lookback": 24 * 41}, "too few for 3 test day(s)"), ({"horizon": 24 * 38, "test_days": 1}, "no training window")],
)
def test_windows_longer_than_the_data_are_refused_before_anything_is_written(tmp_path, task, message):
  path = write_load_csv(tmp_path / "X_hourly.csv", days=40)
  config = tiny_config(dayahead_task(path, **task))
  with pytest.raises(Exception) as error:  # noqa: B017  # energy.DataError, checked by name below
    trainer.train_and_evaluate(config, str(tmp_path / "run"))
  assert type(error.value).__name__ == "DataError" and message in str(error.value)
  assert not os.path.exists(tmp_path / "run")


def test_a_day_ahead_run_writes_its_forecasts_metrics_and_plots(dayahead_run):
  workdir, summary = dayahead_run  # 40 days, 3 test days, PT holidays (tests/conftest.py)
  test = summary["test"]
  for key in ("smape", "mae", "rmse", "pinball", "coverage_80", "width_80", "skill"):
    assert np.isfinite(test[key]), key
  assert len(test["by_horizon"]) == 24
  assert set(test["baselines"]) == {"same_hour_day_before", "same_hour_last_week", "ridge"}
  for scores in test["baselines"].values():
    assert {"smape", "mae", "pinball", "coverage_80"} <= set(scores)
  with open(os.path.join(workdir, "test_forecasts.csv")) as f:
    rows = list(csv.DictReader(f))
  assert list(rows[0]) == ["issue_time", "target_time", "lead", "actual", "q0.1", "q0.5", "q0.9"]
  assert len(rows) == 3 * 24 and rows[0]["issue_time"] == rows[0]["target_time"]  # issued at 00:00 for 00:00
  q = np.array([[float(r[f"q{x}"]) for x in (0.1, 0.5, 0.9)] for r in rows])
  actual = np.array([float(r["actual"]) for r in rows])
  assert np.all(np.diff(q, axis=1) >= 0)
  np.testing.assert_allclose(
    dayahead_report.score(q.reshape(3, 24, 3), actual.reshape(3, 24), (0.1, 0.5, 0.9))["mae"], test["mae"], rtol=1e-4
  )
  for name in ("forecast.png", "by_lead.png", "scaling.json", "summary.json"):
    assert os.path.getsize(os.path.join(workdir, name)) > 0


def test_the_ridge_and_lightgbm_per_lead_learn_a_day_ahead_rule(tmp_path):
  """A load that is exactly yesterday's same hour: the ridge per lead forecasts it to rounding, LightGBM closely."""
  pattern = 1000 + 100 * np.sin(np.arange(24))
  path = write_load_csv(tmp_path / "X_hourly.csv", days=30, value=lambda row: pattern[row % 24])
  data = dayahead.load_dayahead([path], lookback=48, test_days=3)
  forecasts = dayahead_baselines.forecasts(data, ["ridge", "lightgbm"], (0.1, 0.5, 0.9))
  actual = data.load[data.target_rows(data.test_origins)]
  np.testing.assert_allclose(forecasts["ridge"][..., 1], actual, atol=0.5)
  assert forecasts["lightgbm"].shape == (3, 24, 3) and np.all(np.diff(forecasts["lightgbm"], axis=-1) >= 0)
  np.testing.assert_allclose(forecasts["lightgbm"][..., 1], actual, atol=5)  # a 200 MW daily swing
  np.testing.assert_allclose(forecasts["same_hour_day_before"][..., 1], actual)


def test_the_backtest_refits_each_fold_on_the_days_before_it(tmp_path):
  import backtest_dayahead  # pylint: disable=g-import-not-at-top

  path = write_load_csv(tmp_path / "X_hourly.csv", days=30)
  config = tmp_path / "dayahead.yaml"
  config.write_text(
    f"task: {{kind: dayahead, csv_files: [{path}], lookback: 48}}\n"
    "model: {hidden: 4, num_layers: 1, highway: 48}\n"
    "train: {batch_size: 32, num_steps: 4, progress_bar: false}\n"
  )
  out = tmp_path / "out"
  table = backtest_dayahead.main(
    ["--config", str(config), "--folds", "2", "--days", "2", "--runs-dir", str(tmp_path / "runs"), "--out", str(out)]
  )
  summaries = [json.load(open(tmp_path / "runs" / f"dayahead_fold{k}" / "summary.json")) for k in range(2)]
  issues = [
    [r["issue_time"] for r in csv.DictReader(open(tmp_path / "runs" / f"dayahead_fold{k}" / "test_forecasts.csv"))]
    for k in range(2)
  ]
  assert sorted(set(issues[0])) == ["2021-03-29 00:00:00", "2021-03-30 00:00:00"]  # the last two whole days
  assert sorted(set(issues[1])) == ["2021-03-27 00:00:00", "2021-03-28 00:00:00"]  # the two before them
  assert table["model"]["smape"]["folds"] == [s["test"]["smape"] for s in summaries]
  assert set(table) == {"model", "same_hour_day_before", "same_hour_last_week", "ridge"}
  assert "± " in (out / "backtest.md").read_text() and json.load(open(out / "backtest.json"))["folds"] == 2
  with pytest.raises(SystemExit):
    backtest_dayahead.main(["--config", os.path.join(REPO, "configs", "energy_default.yaml"), "--out", str(out)])


@pytest.mark.parametrize("head", ["direct", "decoder"])
def test_a_fresh_run_starts_as_the_ridge_forecast_of_its_highway(tmp_path, head):
  """A load that is exactly yesterday's same hour: the ridge start forecasts it before any step, for every quantile's median."""
  pattern = 1000 + 100 * np.sin(np.arange(24))
  path = write_load_csv(tmp_path / "X_hourly.csv", days=30, value=lambda row: pattern[row % 24])
  config = tiny_config(dayahead_task(path, highway_start="ridge"), model={"hidden": 8, "highway": 48, "head": head})
  task = tasks.build_task(config.task, seed=0, batch_size=16, highway=48)
  model = step.create_model(config.model, task.outputs, task.forecast)
  x, y = task.test_batch(0, task.num_test)
  params = jax.jit(lambda k: task.start(model.init(k, jnp.asarray(x[:1]))["params"]))(jax.random.key(0))
  q = np.asarray(model.apply({"params": params}, jnp.asarray(x))).reshape(len(x), 24, 3)
  np.testing.assert_allclose(q[..., 1], y, atol=1e-3)  # scaled: 1e-3 of the load's spread
  assert np.all(np.diff(q, axis=-1) > 0)
  seasonal = tiny_config(dayahead_task(path), model={"hidden": 8, "highway": 48})  # the default
  assert tasks.build_task(seasonal.task, seed=0, batch_size=16, highway=48).start is None
