"""Shared test configuration: strict promotion rules, PRNG fixtures, the environment of child Pythons."""

import os
import pathlib

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


@pytest.fixture
def subprocess_env():
  """Environment of a child Python on the CPU that imports this checkout: jaxgru and experiments/."""
  repo = pathlib.Path(__file__).resolve().parents[1]
  paths = [str(repo), str(repo / "experiments"), os.environ.get("PYTHONPATH", "")]
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": os.pathsep.join(filter(None, paths))}
  env.pop("XLA_FLAGS", None)
  return env
