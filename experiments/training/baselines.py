r"""The forecasts a forecaster fits before any network: a ridge regression (and LightGBM) on the same lookback.

Each model reads what the network reads, the ``lookback`` hours of load
before the target (per-file scaled, as :class:`training.energy.EnergyData`
holds them), plus the target's hour of day and day of week as one-hot
columns; it is fitted on the run's training windows only, and its test
forecasts are scored on the original scale beside the network's.

The ridge regression is solved in closed form with an unpenalized intercept:

.. math::

   w = (X_c^\top X_c + \alpha I)^{-1} X_c^\top y_c, \qquad b = \bar y - \bar x^\top w

where :math:`X_c, y_c` are the training features and targets less their means.

Example:

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(200, 3))
>>> fit = fit_ridge(x, x @ np.array([1.0, -2.0, 0.5]) + 3.0, alpha=1e-6)
>>> np.round(fit.coef, 3).tolist(), round(float(fit.intercept), 3)
([1.0, -2.0, 0.5], 3.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

# The fitted baselines a run may ask for (``task.baselines``); the naive ones are always scored.
KINDS = ("ridge", "lightgbm")
# The ridge penalties tried; the one with the lowest error on the last tenth of the training windows
# (fitted on the rest) is refitted on all of them. The test windows are never looked at.
RIDGE_ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
VALIDATION_FRACTION = 0.1


class RidgeFit(NamedTuple):
  """A fitted linear model ``y = x @ coef + intercept``."""

  coef: np.ndarray  # [F] float64
  intercept: float  # the unpenalized offset

  def predict(self, x: np.ndarray) -> np.ndarray:
    """Features ``[N, F]`` -> predictions ``[N]`` float64."""
    return np.asarray(x, np.float64) @ self.coef + self.intercept


def fit_ridge(x: np.ndarray, y: np.ndarray, *, alpha: float = 1.0) -> RidgeFit:
  """Least squares with an L2 penalty ``alpha |w|^2`` on the weights (not the intercept).

  Args:
    x: features ``[N, F]``.
    y: targets ``[N]``.
    alpha: the penalty, ``>= 0``.

  Returns:
    A :class:`RidgeFit`.

  Raises:
    ValueError: mismatched or empty shapes, or a negative ``alpha``.
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if x.ndim != 2 or y.shape != (x.shape[0],) or x.shape[0] == 0:
    raise ValueError(f"fit_ridge needs x [N, F] and y [N] with N > 0, got x {x.shape} and y {y.shape}")
  if alpha < 0:
    raise ValueError(f"alpha must be >= 0, got {alpha}")
  x_mean, y_mean = x.mean(axis=0), y.mean()
  xc = x - x_mean
  gram = xc.T @ xc + alpha * np.eye(x.shape[1])
  # lstsq, not solve: alpha=0 with collinear one-hot columns is singular.
  coef = np.linalg.lstsq(gram, xc.T @ (y - y_mean), rcond=None)[0]
  return RidgeFit(coef, float(y_mean - x_mean @ coef))


def fit_ridge_validated(
  x: np.ndarray, y: np.ndarray, *, alphas: Sequence[float] = RIDGE_ALPHAS
) -> tuple[RidgeFit, float]:
  """Picks ``alpha`` on the last :data:`VALIDATION_FRACTION` of the rows (in time order), then refits on all.

  Args:
    x: training features ``[N, F]``, rows in time order.
    y: training targets ``[N]``.
    alphas: the penalties tried.

  Returns:
    ``(fit on all rows, the chosen alpha)``.
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  cut = len(y) - max(1, int(VALIDATION_FRACTION * len(y)))
  if cut < 1:
    raise ValueError(f"fit_ridge_validated needs at least 2 rows, got {len(y)}")
  errors = [np.mean((fit_ridge(x[:cut], y[:cut], alpha=a).predict(x[cut:]) - y[cut:]) ** 2) for a in alphas]
  alpha = float(alphas[int(np.argmin(errors))])
  return fit_ridge(x, y, alpha=alpha), alpha


def lag_features(scaled_load: np.ndarray, times: np.ndarray, ends: np.ndarray, lookback: int) -> np.ndarray:
  """The baselines' inputs for the targets at rows ``ends``: lags and the target's calendar.

  Args:
    scaled_load: the scaled load of every row ``[N]``.
    times: the timestamp of every row ``[N]`` (datetime64).
    ends: rows of the targets ``[B]``; each reads rows ``end - lookback .. end - 1``.
    lookback: T.

  Returns:
    ``[B, T + 24 + 7]`` float64: the T lags (oldest first), one-hot hour of day, one-hot day of week (Monday 0).
  """
  ends = np.asarray(ends)
  lags = scaled_load[ends[:, None] + np.arange(-lookback, 0)]  # [B, T]
  return np.concatenate([lags, calendar_onehot(times[ends])], axis=1)


def calendar_onehot(stamps: np.ndarray) -> np.ndarray:
  """One-hot hour of day and day of week (Monday 0) of timestamps ``[B]`` (datetime64): ``[B, 24 + 7]`` float64."""
  hours = np.asarray(stamps).astype("datetime64[h]")
  hour = hours.astype(np.int64) % 24
  weekday = (hours.astype("datetime64[D]").astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
  return np.concatenate([np.eye(24)[hour], np.eye(7)[weekday]], axis=1)


def _lightgbm(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int) -> np.ndarray:
  """LightGBM with its defaults, one thread; :func:`check_available` has checked the import."""
  import lightgbm  # pylint: disable=g-import-not-at-top

  model = lightgbm.LGBMRegressor(random_state=seed, n_jobs=1, verbose=-1)
  return model.fit(x_train, y_train).predict(x_test)


def check_available(kinds: Sequence[str]) -> None:
  """Raises before any work when a requested baseline is unknown or its package is missing.

  Raises:
    ValueError: an unknown name. ImportError: LightGBM requested but not installed.
  """
  unknown = [k for k in kinds if k not in KINDS]
  if unknown:
    raise ValueError(f"unknown baseline(s) {unknown} in task.baselines; expected names from {KINDS}")
  if "lightgbm" in kinds:
    try:
      import lightgbm  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    except ImportError:
      raise ImportError(
        "task.baselines names 'lightgbm', which is not installed: pip install -e '.[lightgbm]' "
        "(or drop it from task.baselines)"
      ) from None


def fitted_forecasts(
  kinds: Sequence[str],
  scaled_load: np.ndarray,
  times: np.ndarray,
  train_ends: np.ndarray,
  test_ends: np.ndarray,
  lookback: int,
  *,
  seed: int = 0,
) -> dict[str, np.ndarray]:
  """Fits each baseline of ``kinds`` on the training windows and forecasts the test windows.

  Args:
    kinds: names from :data:`KINDS`.
    scaled_load: the scaled load of every row ``[N]`` (each file with its own training-part scaler).
    times: timestamps ``[N]`` (datetime64).
    train_ends: target rows of the training windows ``[N_train]``.
    test_ends: target rows of the test windows ``[N_test]``.
    lookback: T.
    seed: LightGBM's random state.

  Returns:
    name -> scaled test forecasts ``[N_test]`` float64, in the order of ``kinds``.
  """
  check_available(kinds)
  x_train = lag_features(scaled_load, times, train_ends, lookback)
  x_test = lag_features(scaled_load, times, test_ends, lookback)
  y_train = scaled_load[train_ends].astype(np.float64)
  forecasts = {}
  for kind in kinds:
    if kind == "ridge":
      forecasts[kind] = fit_ridge_validated(x_train, y_train)[0].predict(x_test)
    else:
      forecasts[kind] = _lightgbm(x_train, y_train, x_test, seed)
  return forecasts


def fit_and_forecast(data, kinds: Sequence[str] = ("ridge",), *, seed: int = 0) -> dict[str, np.ndarray]:
  """The baselines of ``kinds`` fitted on a data set's training windows, forecasting its test windows.

  Args:
    data: a :class:`training.energy.EnergyData`.
    kinds: names from :data:`KINDS`.
    seed: LightGBM's random state.

  Returns:
    name -> test forecasts ``[N_test]`` float64 in the original unit, aligned with ``data.test_ends``.
  """
  scaled = fitted_forecasts(
    kinds, data.features[:, 0].astype(np.float64), data.times, data.train_ends, data.test_ends, data.lookback, seed=seed
  )
  return {name: data.unscale(values, data.test_ends) for name, values in scaled.items()}
