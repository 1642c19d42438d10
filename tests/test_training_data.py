"""Data for training: the Kaggle-format CSV reader and windows, adding problem, digits, metrics."""

import datetime
import sys

import numpy as np
import pytest

from training import adding
from training import baselines
from training import digits
from training import energy
from training import metrics


def write_csv(path, rows, header="Datetime,AEP_MW"):
  with open(path, "w") as f:
    f.write(header + "\n")
    f.writelines(f"{row}\n" for row in rows)
  return str(path)


def hourly_rows(num_rows, start_day=1, shuffle=False):
  rows = [f"2021-03-{start_day + h // 24:02d} {h % 24:02d}:00:00,{1000 + 10 * h}" for h in range(num_rows)]
  if shuffle:  # Kaggle files are not always sorted by time
    rows = [rows[i] for i in np.random.default_rng(0).permutation(num_rows)]
  return rows


def test_windows_targets_and_train_only_scaling(tmp_path):
  path = write_csv(tmp_path / "AEP_hourly.csv", hourly_rows(100, shuffle=True))
  data = energy.load_energy([path], lookback=10, test_fraction=0.1)
  assert (data.num_train, data.num_test) == (81, 9)  # 90 windows, int(0.1 * 90) = 9 for testing
  assert data.feature_names == energy.FEATURES
  x, y = data.windows(data.train_ends[[0, 5]])
  assert x.shape == (2, 10, 5) and x.dtype == np.float32 and y.shape == (2, 1)
  # The load rises linearly: sorted rows, targets follow their windows.
  np.testing.assert_allclose(data.unscale(y[:, 0], data.train_ends[[0, 5]]), [1100.0, 1150.0], rtol=1e-6)
  np.testing.assert_allclose(
    data.unscale(x[0, :, 0], np.full(10, data.train_ends[0])), 1000.0 + 10 * np.arange(10), rtol=1e-6
  )
  # The scaler saw rows 0..90 only: the training part spans [0, 1], the test part lies above it.
  train_rows = data.features[: 10 + 81, 0]
  assert train_rows.min() == 0.0 and train_rows.max() == pytest.approx(1.0)
  assert data.features[data.test_ends, 0].min() > 1.0
  hour = list(energy.FEATURES).index("hour")
  assert data.features[:24, hour].tolist() == pytest.approx(np.arange(24) / 23.0)
  # The naive forecasts: last hour and same hour yesterday; last week reaches before the file's start.
  baselines = data.naive_forecasts(data.test_ends)
  assert sorted(baselines) == ["last_hour", "same_hour_yesterday"]
  np.testing.assert_allclose(baselines["last_hour"], data.load[data.test_ends] - 10.0)
  np.testing.assert_allclose(baselines["same_hour_yesterday"], data.load[data.test_ends] - 240.0)


def test_several_files_and_feature_subset(tmp_path):
  paths = [
    write_csv(tmp_path / f"{n}_hourly.csv", hourly_rows(rows), header=f"Datetime,{n}_MW")
    for n, rows in (("A", 60), ("B", 80))
  ]
  assert energy.resolve_paths([str(tmp_path / "*_hourly.csv")]) == sorted(paths)
  data = energy.load_energy(paths, lookback=8, test_fraction=0.1, features=("load", "hour"))
  assert data.features.shape == (140, 2)
  # Each file keeps its own windows, split and scaler: no window crosses files.
  assert data.num_test == int(0.1 * 52) + int(0.1 * 72)
  assert set(data.file_index[data.train_ends]) == {0, 1}
  assert np.all(data.file_index[data.train_ends - 8] == data.file_index[data.train_ends])


@pytest.mark.parametrize(
  "content, match",
  [
    ("Datetime,AEP_MW\n2021-01-01 00:00:00,1\n2021-01-01 01:00:00,oops\n", r"bad\.csv, line 3: cannot parse"),
    ("Datetime,AEP_MW\n2021-01-01 00:00:00,1\nnot a date,2\n", r"bad\.csv, line 3: cannot parse"),
    ("Datetime,AEP_MW\n2021-01-01 00:00:00,1\n2021-01-01 01:00:00\n", r"bad\.csv, line 3: cannot parse"),
    ("Datetime,AEP_MW\n2021-01-01 00:00:00,nan\n", r"bad\.csv, line 2: .* not a finite number"),
    ("Time,AEP_MW\n2021-01-01 00:00:00,1\n", r"bad\.csv: missing column\(s\) \['Datetime'\]"),
    ("Datetime,load\n2021-01-01 00:00:00,1\n", r"bad\.csv: expected exactly one column ending in '_MW'.*found 0"),
    ("Datetime,A_MW,B_MW\n2021-01-01 00:00:00,1,2\n", r"bad\.csv: .*found 2 \['A_MW', 'B_MW'\].*task\.value_column"),
    (
      "Datetime,AEP_MW\n2021-01-01 00:00:00,1\n2021-01-01 01:00:00,2\n2021-01-01 00:00:00,3\n",
      r"bad\.csv, line 4: timestamp 2021-01-01 00:00:00 is duplicated \(also on line 2\)",
    ),
    (
      "Datetime,AEP_MW\n2021-01-01 00:00:00,1\n2021-01-01 01:00:00,2\n2021-01-01 04:00:00,3\n",
      r"bad\.csv, line 4: timestamp 2021-01-01 04:00:00 follows .* a gap of 3:00:00; expected consecutive hours",
    ),
    ("Datetime,AEP_MW\n2021-01-01 00:00:00,1\n2021-01-01 01:00:00,\xff\n", r"bad\.csv, line 3: not UTF-8 text"),
    ("", r"bad\.csv: the file is empty"),
  ],
)
def test_malformed_csv_names_file_and_line(tmp_path, content, match):
  path = tmp_path / "bad.csv"
  path.write_bytes(content.encode("latin-1"))  # \xff: a byte that is not UTF-8
  with pytest.raises(energy.DataError, match=match):
    energy.load_energy([str(path)], lookback=1)


def test_missing_files_and_short_series(tmp_path):
  with pytest.raises(energy.DataError, match="does not exist"):
    energy.resolve_paths([str(tmp_path / "nope.csv")])
  with pytest.raises(energy.DataError, match="no CSV file matches"):
    energy.resolve_paths([str(tmp_path / "*.csv")])
  for read in (lambda p: energy.resolve_paths([p]), energy.read_hourly_csv):
    with pytest.raises(energy.DataError, match=f"data file '{tmp_path}' is a directory; expected a CSV file"):
      read(str(tmp_path))
  path = write_csv(tmp_path / "short.csv", hourly_rows(50))
  with pytest.raises(energy.DataError, match=r"short\.csv: lookback 90 is longer than the series \(50 rows\)"):
    energy.load_energy([path], lookback=90)
  with pytest.raises(energy.DataError, match="too few to split"):
    energy.load_energy([path], lookback=45, test_fraction=0.1)
  with pytest.raises(ValueError, match="features must start with 'load'"):
    energy.load_energy([path], lookback=4, features=("hour", "load"))


def test_value_column_and_datetime_column(tmp_path):
  path = write_csv(tmp_path / "t.csv", [r.replace(",", ",x,") for r in hourly_rows(30)], header="when,other,temp")
  data = energy.load_energy([path], lookback=5, datetime_column="when", value_column="temp")
  assert data.load[:2].tolist() == [1000.0, 1010.0]


def test_metrics_and_best_baseline():
  actual = np.array([1.0, 2.0, 4.0, 0.0])
  forecast = np.array([1.0, 3.0, 2.0, 0.0])
  # mean(2|F-A|/(|F|+|A|)) * 100, with 0/0 counted as 0
  assert metrics.smape(forecast, actual) == pytest.approx(100 * (0 + 2 / 5 + 4 / 6 + 0) / 4)
  assert metrics.mae(forecast, actual) == pytest.approx(0.75)
  assert metrics.rmse(forecast, actual) == pytest.approx(np.sqrt(5 / 4))
  assert metrics.smape(actual, actual) == 0.0
  with pytest.raises(ValueError, match="same non-empty shape"):
    metrics.smape(forecast, actual[:2])
  scores = metrics.baseline_metrics({"a": forecast, "b": actual}, actual)
  assert scores["b_smape"] == 0.0 and scores["a_mae"] == pytest.approx(0.75)
  assert metrics.best_baseline({"smape": 0.1, **scores}) == ("b", 0.0)
  assert metrics.best_baseline({"smape": 0.1}) is None


def test_adding_problem_constant_baseline():
  x, y = adding.adding_batch(np.random.default_rng(0), batch=20000, length=50)
  assert x.shape == (20000, 50, 2) and y.shape == (20000, 1)
  markers = x[..., 1]
  assert np.all(markers.sum(axis=1) == 2)
  assert np.all(markers[:, :25].sum(axis=1) == 1)  # one marker in each half
  assert np.mean((1.0 - y) ** 2) == pytest.approx(adding.CONSTANT_PREDICTION_MSE, rel=0.03)
  with pytest.raises(ValueError, match="length >= 2"):
    adding.adding_batch(np.random.default_rng(0), batch=1, length=1)


def test_digits_split_is_fixed_by_seed():
  a = digits.load_digits_sequences(test_fraction=0.25, seed=1)
  b = digits.load_digits_sequences(test_fraction=0.25, seed=1)
  assert all(np.array_equal(u, v) for u, v in zip(a, b))
  x_train, y_train, x_test, y_test = a
  assert len(y_train) + len(y_test) == 1797 and x_test.shape[1:] == (8, 8)
  assert 0.0 <= x_train.min() and x_train.max() <= 1.0


def test_ridge_matches_scikit_learn_and_validation_picks_the_penalty(monkeypatch):
  from sklearn.linear_model import Ridge  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)
  x = rng.normal(size=(60, 5))
  y = x @ rng.normal(size=5) + 2.0 + 0.1 * rng.normal(size=60)
  for alpha in (0.0, 0.5, 10.0):
    fit = baselines.fit_ridge(x, y, alpha=alpha)
    reference = Ridge(alpha=alpha).fit(x, y)
    np.testing.assert_allclose(fit.coef, reference.coef_, rtol=1e-8, atol=1e-10)
    assert fit.intercept == pytest.approx(reference.intercept_)
    np.testing.assert_allclose(fit.predict(x), reference.predict(x), rtol=1e-10)
  # Noise-free targets: the smallest penalty fits the held-out rows best; a huge one shrinks to the mean.
  _, alpha = baselines.fit_ridge_validated(x, x @ np.arange(1.0, 6.0), alphas=(1e-6, 1e3))
  assert alpha == 1e-6
  with pytest.raises(ValueError, match=r"x \[N, F\] and y \[N\]"):
    baselines.fit_ridge(x, y[:-1])
  with pytest.raises(ValueError, match="unknown baseline"):
    baselines.check_available(["ridge", "arima"])
  monkeypatch.setitem(sys.modules, "lightgbm", None)  # as if not installed: import raises ImportError
  with pytest.raises(ImportError, match=r"'lightgbm', which is not installed: pip install -e '\.\[lightgbm\]'"):
    baselines.check_available(["lightgbm"])


def test_baseline_features_and_forecasts_on_the_training_part_only(tmp_path):
  path = write_csv(tmp_path / "AEP_hourly.csv", hourly_rows(400))  # every weekday in the training part
  data = energy.load_energy([path], lookback=10, test_fraction=0.1, scaling="standard")
  scaled = data.features[:, 0].astype(np.float64)
  x = baselines.lag_features(scaled, data.times, data.test_ends, data.lookback)
  assert x.shape == (data.num_test, 10 + 24 + 7)
  np.testing.assert_array_equal(x[:, :10], scaled[data.test_ends[:, None] + np.arange(-10, 0)])
  stamps = [datetime.datetime.fromisoformat(str(t)) for t in data.times[data.test_ends]]
  assert x[:, 10:34].argmax(axis=1).tolist() == [t.hour for t in stamps]
  assert x[:, 34:].argmax(axis=1).tolist() == [t.weekday() for t in stamps]
  # The load rises by 10 an hour: the ridge regression continues the line into the test part it never saw.
  forecasts = baselines.fitted_forecasts(["ridge"], scaled, data.times, data.train_ends, data.test_ends, data.lookback)
  np.testing.assert_allclose(data.unscale(forecasts["ridge"], data.test_ends), data.load[data.test_ends], rtol=1e-3)
  # Standard scaling: the training rows have zero mean and unit variance.
  fit_rows = scaled[: 10 + data.num_train]
  assert fit_rows.mean() == pytest.approx(0.0, abs=1e-6) and fit_rows.std() == pytest.approx(1.0, rel=1e-5)
  with pytest.raises(ValueError, match="unknown scaling 'robust'"):
    energy.load_energy([path], lookback=10, scaling="robust")
