"""The adding problem (Hochreiter & Schmidhuber 1997), a test of memory over ``T`` steps.

Each step carries a value drawn uniformly from [0, 1] and a marker; exactly two
steps are marked, one in each half of the sequence (the form of Le et al.
2015 and Arjovsky et al. 2016). The target is the sum of the two marked
values. Always predicting 1, the mean of the target, scores a mean squared
error of Var(U + U') = 2/12 = 0.167: a model beats that only by remembering
the marked values across up to ``T`` steps.

Example:

>>> import numpy as np
>>> x, y = adding_batch(np.random.default_rng(0), batch=4, length=10)
>>> x.shape, y.shape, x.dtype  # [B, T, 2], [B, 1]
((4, 10, 2), (4, 1), dtype('float32'))
>>> bool(np.allclose(y[:, 0], (x[..., 0] * x[..., 1]).sum(axis=1)))
True
"""

from __future__ import annotations

import numpy as np

CONSTANT_PREDICTION_MSE = 2.0 / 12.0  # Var of the sum of two U(0, 1) values


def adding_batch(rng: np.random.Generator, *, batch: int, length: int) -> tuple[np.ndarray, np.ndarray]:
  """Draws ``batch`` adding-problem sequences of ``length`` steps.

  Args:
    rng: the source of randomness (the caller derives it from the seed and step).
    batch: B.
    length: T, at least 2.

  Returns:
    ``(inputs [B, T, 2], targets [B, 1])`` float32: channel 0 holds the
    values, channel 1 the two markers.
  """
  if length < 2:
    raise ValueError(f"the adding problem needs length >= 2 (one marker per half), got {length}")
  values = rng.uniform(0.0, 1.0, size=(batch, length))
  half = length // 2
  first = rng.integers(0, half, size=batch)
  second = rng.integers(half, length, size=batch)
  markers = np.zeros((batch, length))
  rows = np.arange(batch)
  markers[rows, first] = 1.0
  markers[rows, second] = 1.0
  targets = values[rows, first] + values[rows, second]
  return np.stack([values, markers], axis=-1).astype(np.float32), targets[:, None].astype(np.float32)
