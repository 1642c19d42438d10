r"""Forecast error measures on the original scale, and the best of the naive baselines.

.. math::

   \mathrm{sMAPE} = \frac{100}{n} \sum_i \frac{2 |F_i - A_i|}{|F_i| + |A_i|}, \quad
   \mathrm{MAE} = \frac{1}{n} \sum_i |F_i - A_i|, \quad
   \mathrm{RMSE} = \sqrt{\frac{1}{n} \sum_i (F_i - A_i)^2}

The FloydHub GRU post computed ``abs(F - A) / (A + F) / 2``, a quarter of this: operator
precedence turned the mean of ``|F|`` and ``|A|`` in the denominator into a
division by 2 of the ratio. This is the standard definition, in percent.

Example:

>>> from collections.abc import Sequence

import numpy as np
>>> actual = np.array([100.0, 200.0, 300.0])
>>> {k: round(v, 3) for k, v in forecast_metrics(np.array([110.0, 190.0, 300.0]), actual).items()}
{'smape': 4.884, 'mae': 6.667, 'rmse': 8.165}
>>> test = {"smape": 2.0, "ridge_smape": 2.5, "last_hour_smape": 8.0, "same_hour_yesterday_smape": 4.0}
>>> best_baseline(test, among=("last_hour", "same_hour_yesterday"))
('same_hour_yesterday', 4.0)
>>> comparison_line("gru", test, fitted=("ridge",), naive=("last_hour", "same_hour_yesterday"))
'GRU test sMAPE 2.00% vs ridge 2.50%, best naive (same hour yesterday) 4.00%'
"""

from __future__ import annotations

from collections.abc import Sequence

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


def baseline_metrics(baselines: dict[str, np.ndarray], actual: np.ndarray) -> dict[str, float]:
  """``{"<name>_smape": ..., "<name>_mae": ..., "<name>_rmse": ...}`` of each baseline forecast ``[N]``."""
  return {
    f"{name}_{k}": v for name, forecast in baselines.items() for k, v in forecast_metrics(forecast, actual).items()
  }


def best_baseline(test: dict[str, float], among: Sequence[str] | None = None) -> tuple[str, float] | None:
  """The baseline with the lowest sMAPE among the ``<name>_smape`` entries of test metrics, or ``None``.

  Args:
    test: test metrics.
    among: the baseline names to consider; ``None``: every ``<name>_smape`` entry.
  """
  scores = {key[: -len("_smape")]: value for key, value in test.items() if key.endswith("_smape")}
  if among is not None:
    scores = {name: value for name, value in scores.items() if name in among}
  return min(scores.items(), key=lambda item: item[1]) if scores else None


def comparison_line(model: str, test: dict[str, float], *, fitted: Sequence[str], naive: Sequence[str]) -> str:
  """One line putting a model's test sMAPE beside each fitted baseline and the best naive forecast."""
  parts = [f"{name} {test[f'{name}_smape']:.2f}%" for name in fitted if f"{name}_smape" in test]
  best = best_baseline(test, among=naive)
  if best:
    parts.append(f"best naive ({best[0].replace('_', ' ')}) {best[1]:.2f}%")
  return f"{model.upper()} test sMAPE {test['smape']:.2f}%" + (" vs " + ", ".join(parts) if parts else "")
