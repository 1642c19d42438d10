r"""Quantile forecasts: quantiles that never cross, the pinball loss, and how intervals are scored.

A forecast of ``Q`` quantile levels :math:`\tau_1 < \dots < \tau_Q` (one of them 0.5, the point forecast)
for each of ``F`` lead times. The pinball (quantile) loss of a level :math:`\tau` is

.. math::

   \rho_\tau(y, q) = \max\bigl(\tau (y - q),\ (\tau - 1)(y - q)\bigr),

whose expectation is minimal at the :math:`\tau`-quantile of :math:`y`; the mean over levels and lead times is
the training loss (:func:`pinball_loss`) and a test metric (:func:`pinball`). The network's raw outputs become
quantiles that cannot cross (:func:`noncrossing`): the median is the raw median, each level above it adds a
softplus step to the one below, each level below subtracts one.

Example:

>>> import numpy as np
>>> levels = (0.1, 0.5, 0.9)
>>> q = np.asarray(noncrossing(np.zeros((1, 2, 3)), levels))  # [B, F, Q]
>>> bool(np.all(np.diff(q, axis=-1) > 0)), q[0, 0, 1].item()
(True, 0.0)
>>> y = np.array([[0.0, 2.0]])  # [B, F]
>>> round(pinball(q.reshape(2, 3), y.reshape(2), levels), 4)
0.4307
>>> interval_metrics(q.reshape(2, 3), y.reshape(2), levels)
{'coverage_80': 50.0, 'width_80': 1.3863}
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MEDIAN = 0.5


def median_index(levels: Sequence[float]) -> int:
  """The position of 0.5 in ``levels`` (the point forecast).

  Raises:
    ValueError: 0.5 is not among the levels.
  """
  levels = [float(level) for level in levels]
  if MEDIAN not in levels:
    raise ValueError(f"the quantile levels {levels} must include 0.5, the point forecast")
  return levels.index(MEDIAN)


def noncrossing(raw, levels: Sequence[float]):
  """Raw outputs ``[..., Q]`` -> quantiles ``[..., Q]``, non-decreasing along the last axis.

  ``q_m = raw_m`` at the median ``m``; ``q_{j+1} = q_j + softplus(raw_{j+1})`` above it and
  ``q_{j-1} = q_j - softplus(raw_{j-1})`` below it.
  """
  import jax  # pylint: disable=g-import-not-at-top  # the commands check configs and data before JAX loads
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  m = median_index(levels)
  center = raw[..., m : m + 1]
  above = center + jnp.cumsum(jax.nn.softplus(raw[..., m + 1 :]), axis=-1)
  below = center - jnp.cumsum(jax.nn.softplus(raw[..., :m][..., ::-1]), axis=-1)[..., ::-1]
  return jnp.concatenate([below, center, above], axis=-1)


def raw_for(q: np.ndarray, levels: Sequence[float]) -> np.ndarray:
  """The inverse of :func:`noncrossing` (NumPy): quantiles ``[..., Q]`` -> the raw outputs that give them.

  Gaps between neighbouring quantiles below ``1e-6`` are raised to it (softplus never reaches 0).
  """
  q = np.asarray(q, np.float64)
  m = median_index(levels)
  gaps = np.maximum(np.abs(np.diff(q, axis=-1)), 1e-6)  # [..., Q - 1]: q_{j+1} - q_j
  steps = np.log(np.expm1(gaps))  # softplus^-1
  return np.concatenate([steps[..., :m], q[..., m : m + 1], steps[..., m:]], axis=-1)


def pinball_loss(predictions, targets, levels: Sequence[float]):
  """Mean pinball loss of quantiles ``[B, F * Q]`` (lead-major) against targets ``[B, F]`` (JAX arrays); the training loss."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  q = predictions.reshape(*targets.shape, len(levels))  # [B, F, Q]
  tau = jnp.asarray(levels, q.dtype).reshape((1,) * targets.ndim + (-1,))
  error = targets[..., None] - q
  return jnp.mean(jnp.maximum(tau * error, (tau - 1.0) * error))


def pinball(quantiles: np.ndarray, actual: np.ndarray, levels: Sequence[float]) -> float:
  """Mean pinball loss of quantiles ``[N, Q]`` against ``actual [N]``, in the unit of the series."""
  q, y = np.asarray(quantiles, np.float64), np.asarray(actual, np.float64)
  if q.shape != (*y.shape, len(levels)):
    raise ValueError(f"quantiles must be [N, {len(levels)}] for actual [N] = {list(y.shape)}, got {list(q.shape)}")
  error = y[:, None] - q
  tau = np.asarray(levels, np.float64)
  return float(np.mean(np.maximum(tau * error, (tau - 1.0) * error)))


def interval_name(levels: Sequence[float]) -> str:
  """The central interval between the lowest and the highest level, in percent: ``"80"`` for 0.1 and 0.9."""
  return f"{round(100 * (levels[-1] - levels[0])):d}"


def interval_metrics(quantiles: np.ndarray, actual: np.ndarray, levels: Sequence[float]) -> dict[str, float]:
  """Coverage (percent of actual values inside) and mean width of the interval of the outermost levels.

  Keys ``coverage_<P>`` and ``width_<P>``, ``P`` from :func:`interval_name` (80 for 0.1 and 0.9); empty
  with a single level.
  """
  if len(levels) < 2:
    return {}
  q, y = np.asarray(quantiles, np.float64), np.asarray(actual, np.float64)
  low, high = q[:, 0], q[:, -1]
  name = interval_name(levels)
  return {
    f"coverage_{name}": float(100.0 * np.mean((y >= low) & (y <= high))),
    f"width_{name}": round(float(np.mean(high - low)), 4),
  }


def residual_quantiles(point: np.ndarray, residuals: np.ndarray, levels: Sequence[float]) -> np.ndarray:
  """Intervals of a point forecaster: ``point [N, F]`` plus the empirical quantiles of its residuals per lead.

  Args:
    point: forecasts ``[N, F]``.
    residuals: ``actual - forecast`` on the training part ``[M, F]``.
    levels: the quantile levels ``[Q]``.

  Returns:
    ``[N, F, Q]``; the median is the point forecast itself (its own sMAPE is what is compared).
  """
  offsets = np.quantile(np.asarray(residuals, np.float64), np.asarray(levels), axis=0).T  # [F, Q]
  offsets[:, median_index(levels)] = 0.0
  return np.asarray(point, np.float64)[..., None] + offsets[None]
