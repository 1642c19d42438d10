"""What a day-ahead forecaster fits first, scored on the same forecast days as the network.

- **Seasonal naive**: each target hour's load on the same hour the day before the issue
  (``same_hour_day_before``) and one week before the target (``same_hour_last_week``), the latest such
  hour known at issue time (:func:`training.dayahead.seasonal_lag`).
- **Ridge per lead**: one ridge regression per lead time on the lookback's scaled loads and the target
  hour's calendar (one-hot hour, weekday, holiday), its penalty picked on the last tenth of the training
  windows (:func:`training.baselines.fit_ridge_validated`).
- **LightGBM per lead** (``task.baselines: [ridge, lightgbm]``), on the same features.

Every baseline's intervals are its point forecast plus the empirical quantiles of its residuals on the
training windows, per lead (:func:`training.quantiles.residual_quantiles`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from training import baselines as fitted
from training import dayahead
from training import quantiles

NAIVE_PERIODS = {"same_hour_day_before": dayahead.DAY, "same_hour_last_week": dayahead.WEEK}
# Training windows whose residuals give the baselines' intervals (the latest ones; all when fewer).
RESIDUAL_WINDOWS = 8760


def _naive_origins(data: dayahead.DayAheadData, origins: np.ndarray, period: int) -> np.ndarray:
  """The ``origins`` whose seasonal-naive rows lie inside their own file."""
  first_row = data.target_rows(origins) - dayahead.seasonal_lag(period, data.gap, data.leads)  # [B, F]
  file_start = np.searchsorted(data.file_index, data.file_index[origins])
  return origins[np.all(first_row >= file_start[:, None], axis=1)]


def target_calendar(data: dayahead.DayAheadData, rows: np.ndarray) -> np.ndarray:
  """One-hot hour (24), one-hot weekday (7) and the holiday flag of the rows ``[B]``: ``[B, 32]`` float64."""
  return np.concatenate([fitted.calendar_onehot(data.times[rows]), data.calendar[rows, -1:].astype(np.float64)], axis=1)


def _lags(data: dayahead.DayAheadData, origins: np.ndarray) -> np.ndarray:
  """``[B, T]``: the scaled lookback loads of each window, oldest first."""
  rows = origins[:, None] + np.arange(-data.gap - data.lookback, -data.gap)
  return data.scaled_load[rows].astype(np.float64)


def _per_lead(kind: str, data: dayahead.DayAheadData, origins: dict[str, np.ndarray], seed: int) -> dict:
  """A ridge or LightGBM model per lead: scaled forecasts ``[B, F]`` of each set of ``origins``."""
  lags = {name: _lags(data, o) for name, o in origins.items()}
  train = origins["train"]
  out = {name: np.zeros((len(o), data.horizon)) for name, o in origins.items()}
  for lead in range(data.horizon):
    x = {name: np.concatenate([lags[name], target_calendar(data, o + lead)], axis=1) for name, o in origins.items()}
    y = data.scaled_load[train + lead].astype(np.float64)
    if kind == "ridge":
      model = fitted.fit_ridge_validated(x["train"], y)[0]
      for name in origins:
        out[name][:, lead] = model.predict(x[name])
    else:
      import lightgbm  # pylint: disable=g-import-not-at-top  # fitted.check_available has checked it

      model = lightgbm.LGBMRegressor(random_state=seed, n_jobs=1, verbose=-1).fit(x["train"], y)
      for name in origins:
        out[name][:, lead] = model.predict(x[name])
  return out


def linear_start(
  data: dayahead.DayAheadData, loads: int, levels: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """The day-ahead network's ridge start (``task.highway_start: ridge``), fitted on every training window.

  Per lead, a ridge regression of the scaled target on the last ``loads`` scaled loads (penalty validated
  as the ridge baseline's), with intervals from the empirical quantiles of its residuals, as the baselines'.

  Returns:
    ``(kernel [loads, F], bias [F], raw [F, Q])`` float32: the ``highway`` Dense layer of
    :class:`training.forecaster.DayAheadModel`, and the head's raw outputs that give the residual quantiles
    around it (0 at the median; :func:`training.quantiles.raw_for`).
  """
  lags = _lags(data, data.train_origins)[:, data.lookback - loads :]  # [N_train, K]
  targets = data.scaled_load[data.target_rows(data.train_origins)].astype(np.float64)  # [N_train, F]
  kernel, bias = np.zeros((loads, data.horizon)), np.zeros(data.horizon)
  for lead in range(data.horizon):
    fit = fitted.fit_ridge_validated(lags, targets[:, lead])[0]
    kernel[:, lead], bias[lead] = fit.coef, fit.intercept
  offsets = quantiles.residual_quantiles(np.zeros((1, data.horizon)), targets - lags @ kernel - bias, levels)[0]
  return kernel.astype(np.float32), bias.astype(np.float32), quantiles.raw_for(offsets, levels).astype(np.float32)


def forecasts(
  data: dayahead.DayAheadData, kinds: Sequence[str], levels: Sequence[float], *, seed: int = 0
) -> dict[str, np.ndarray]:
  """Every baseline's quantile forecasts of the test issues, in the original unit.

  Args:
    data: the day-ahead windows.
    kinds: the fitted baselines (``ridge``, ``lightgbm``), from ``task.baselines``.
    levels: the quantile levels ``[Q]``.
    seed: LightGBM's random state.

  Returns:
    name -> ``[N_test, F, Q]`` float64, aligned with ``data.test_origins``; the naive ones first.
  """
  fitted.check_available(kinds)
  test = data.test_origins
  recent = data.train_origins[-RESIDUAL_WINDOWS:]
  out = {}
  for name, period in NAIVE_PERIODS.items():
    if len(_naive_origins(data, test, period)) < len(test):
      continue  # the lag reaches back before the start of a file
    train = _naive_origins(data, recent, period)
    if not len(train):
      continue
    residuals = data.load[data.target_rows(train)] - data.seasonal_naive(train, period)
    out[name] = quantiles.residual_quantiles(data.seasonal_naive(test, period), residuals, levels)
  for kind in kinds:
    scaled = _per_lead(kind, data, {"train": data.train_origins, "recent": recent, "test": test}, seed)
    residuals = data.load[data.target_rows(recent)] - data.unscale(scaled["recent"], recent)
    out[kind] = quantiles.residual_quantiles(data.unscale(scaled["test"], test), residuals, levels)
  return out
