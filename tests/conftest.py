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


@pytest.fixture(scope="session")
def subprocess_env(tmp_path_factory):
  """Environment of a child Python on the CPU that imports this checkout: jaxgru and experiments/.

  The children share one JAX compilation cache, fresh in each test session: the
  many short training runs compile the same programs, and a cached executable is
  the compiled one (the losses are bit-identical). The cache's size limit turns
  on its file lock, so that children reading and writing at once never meet a
  half-written entry.
  """
  repo = pathlib.Path(__file__).resolve().parents[1]
  paths = [str(repo), str(repo / "experiments"), os.environ.get("PYTHONPATH", "")]
  base = tmp_path_factory.getbasetemp()
  cache = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "jax_compilation_cache"  # one per session
  env = {
    **os.environ,
    "JAX_PLATFORMS": "cpu",
    "PYTHONPATH": os.pathsep.join(filter(None, paths)),
    "JAX_COMPILATION_CACHE_DIR": str(cache),
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "JAX_COMPILATION_CACHE_MAX_SIZE": str(4 << 30),
  }
  env.pop("XLA_FLAGS", None)
  return env


@pytest.fixture(scope="session")
def energy_runs(tmp_path_factory):
  """Tiny GRU and LSTM runs on the same synthetic Kaggle-format file: {kind: (workdir, summary)}.

  Shared by the training tests (the loop, compare, predict, TensorBoard): trained once per session.
  """
  from test_training_loop import tiny_config  # pylint: disable=g-import-not-at-top
  from test_training_loop import write_energy_csv  # pylint: disable=g-import-not-at-top

  from training import trainer  # pylint: disable=g-import-not-at-top

  root = tmp_path_factory.mktemp("energy")
  csv = write_energy_csv(root / "e.csv")
  runs = {}
  for kind in ("gru", "lstm"):
    config = tiny_config({"kind": "energy", "csv_files": [csv], "lookback": 12, "plot_hours": 24}, model={"kind": kind})
    workdir = str(root / kind)
    runs[kind] = workdir, trainer.train_and_evaluate(config, workdir)
  return runs


@pytest.fixture(scope="session")
def dayahead_run(tmp_path_factory):
  """A tiny day-ahead run (PT holidays) on a synthetic 40-day file: ``(workdir, summary)``, trained once per session.

  Shared by the run's own test (tests/test_dayahead.py) and its use and export (tests/test_dayahead_use.py);
  tests that write into the folder work on a copy.
  """
  from test_dayahead import dayahead_task  # pylint: disable=g-import-not-at-top
  from test_dayahead import write_load_csv  # pylint: disable=g-import-not-at-top

  from training import trainer  # pylint: disable=g-import-not-at-top
  from training_helpers import tiny_config  # pylint: disable=g-import-not-at-top

  root = tmp_path_factory.mktemp("dayahead")
  path = write_load_csv(root / "X_hourly.csv", days=40)
  config = tiny_config(
    dayahead_task(path, holidays="PT", plot_days=2),
    model={"hidden": 8, "highway": 48},
    train={"batch_size": 32, "num_steps": 20, "eval_every": 20, "progress_bar": True},  # as train.py runs it
  )
  workdir = str(root / "run")
  return workdir, trainer.train_and_evaluate(config, workdir)
