"""Shared test configuration: strict promotion rules and PRNG fixtures."""

import jax
import numpy as np
import pytest

# Implicit rank promotion hides shape bugs (equinox's tests/conftest.py does the same).
jax.config.update("jax_numpy_rank_promotion", "raise")
# Mixed-dtype arithmetic must be explicit (float32 vs bfloat16 paths stay honest).
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture
def key():
  """A fresh PRNG key per test."""
  return jax.random.key(0)


@pytest.fixture
def rng():
  """A NumPy generator for test data."""
  return np.random.default_rng(0)
