r"""Forecast error measures on the original scale, and the naive last-value baseline.

.. math::

   \mathrm{sMAPE} = \frac{100}{n} \sum_i \frac{2 |F_i - A_i|}{|F_i| + |A_i|}, \quad
   \mathrm{MAE} = \frac{1}{n} \sum_i |F_i - A_i|, \quad
   \mathrm{RMSE} = \sqrt{\frac{1}{n} \sum_i (F_i - A_i)^2}

The FloydHub GRU post computed ``abs(F - A) / (A + F) / 2``, a quarter of this: operator
precedence turned the mean of ``|F|`` and ``|A|`` in the denominator into a
division by 2 of the ratio. This is the standard definition, in percent.

Example:

>>> import numpy as np
>>> actual = np.array([100.0, 200.0, 300.0])
>>> {k: round(v, 3) for k, v in forecast_metrics(np.array([110.0, 190.0, 300.0]), actual).items()}
{'smape': 4.884, 'mae': 6.667, 'rmse': 8.165}
>>> naive_last_value(np.array([1.0, 2.0, 4.0, 7.0]), 2)  # forecasts of values 4.0 and 7.0
array([2., 4.])
"""

from __future__ import annotations

import numpy as np


def smape(forecast: np.ndarray, actual: np.ndarray) -> float:
  """Symmetric mean absolute percentage error in percent, mean(2|F - A| / (|F| + |A|)) x 100.

  A pair with ``F = A = 0`` counts as zero error instead of 0/0.
  """
  forecast, actual = np.asarray(forecast, np.float64), np.asarray(actual, np.float64)
  if forecast.shape != actual.shape or forecast.size == 0:
    raise ValueError(f"forecast and actual must have the same non-empty shape, got {forecast.shape} and {actual.shape}")
  denominator = np.abs(forecast) + np.abs(actual)
  ratio = np.divide(2.0 * np.abs(forecast - actual), denominator, out=np.zeros_like(denominator), where=denominator > 0)
  return float(100.0 * ratio.mean())


def mae(forecast: np.ndarray, actual: np.ndarray) -> float:
  """Mean absolute error, in the unit of the series."""
  return float(np.mean(np.abs(np.asarray(forecast, np.float64) - np.asarray(actual, np.float64))))


def rmse(forecast: np.ndarray, actual: np.ndarray) -> float:
  """Root mean squared error, in the unit of the series."""
  return float(np.sqrt(np.mean((np.asarray(forecast, np.float64) - np.asarray(actual, np.float64)) ** 2)))


def forecast_metrics(forecast: np.ndarray, actual: np.ndarray) -> dict[str, float]:
  """``{"smape": ..., "mae": ..., "rmse": ...}`` of a forecast ``[N]`` against the actual values ``[N]``."""
  return {"smape": smape(forecast, actual), "mae": mae(forecast, actual), "rmse": rmse(forecast, actual)}


def naive_last_value(series: np.ndarray, first_target: int) -> np.ndarray:
  """The naive forecast of ``series[first_target:]``: each value predicted by the one before it."""
  series = np.asarray(series)
  if not 1 <= first_target <= len(series):
    raise ValueError(f"first_target must lie in [1, {len(series)}], got {first_target}")
  return series[first_target - 1 : -1]
