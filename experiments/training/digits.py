"""scikit-learn's bundled 8x8 handwritten digits as sequences: 8 steps of one pixel row each.

1797 images of the UCI "Optical Recognition of Handwritten Digits" set, shipped
inside scikit-learn, so the task runs offline. Pixels (0-16) are scaled to [0, 1].

Example:

>>> x_train, y_train, x_test, y_test = load_digits_sequences(test_fraction=0.2, seed=0)
>>> x_train.shape, x_test.shape, y_train.dtype  # [B, T=8, I=8]
((1438, 8, 8), (359, 8, 8), dtype('int32'))
"""

from __future__ import annotations

import numpy as np

NUM_CLASSES = 10


def load_digits_sequences(*, test_fraction: float, seed: int):
  """Splits the digits at random (fixed by ``seed``) into training and test sequences.

  Returns:
    ``(x_train [N, 8, 8] float32, y_train [N] int32, x_test [M, 8, 8], y_test [M])``.
  """
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top  # optional dependency

  if not 0.0 < test_fraction < 1.0:
    raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
  digits = load_digits()
  images = (digits.images / 16.0).astype(np.float32)  # [N, 8, 8]
  labels = digits.target.astype(np.int32)
  order = np.random.default_rng([seed, 3]).permutation(len(labels))
  num_test = int(round(test_fraction * len(labels)))
  test, train = order[:num_test], order[num_test:]
  return images[train], labels[train], images[test], labels[test]
