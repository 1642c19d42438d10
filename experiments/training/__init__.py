"""Config-driven training of jaxgru models: tasks, optax optimizers, orbax checkpoints, logs and plots.

Run a config with ``python experiments/train.py --config configs/<name>.yaml``;
from Python, :func:`train_and_evaluate` does the same. Needs the ``train``
extra (``pip install -e ".[train]"``).

The names below load on first use: ``from training import schema`` (or
``files``, ``run_folder``, ``energy``, ``tasks``) does not load JAX, so the
command-line tools check their input before paying for it.
"""

import importlib

_EXPORTS = {  # public name: the module that defines it
  "CheckpointError": "training.checkpoint",
  "Checkpoints": "training.checkpoint",
  "DataError": "training.energy",
  "DiskFault": "training.files",
  "NonFiniteLossError": "training.train_log",
  "Run": "training.inference",
  "TrainConfig": "training.schema",
  "TrainState": "training.step",
  "create_train_state": "training.trainer",
  "eval_step": "training.trainer",
  "forecast": "training.inference",
  "load_run": "training.inference",
  "train_and_evaluate": "training.trainer",
  "train_step": "training.trainer",
}

__all__ = tuple(sorted(_EXPORTS))


def __getattr__(name: str):
  if name in _EXPORTS:
    return getattr(importlib.import_module(_EXPORTS[name]), name)
  raise AttributeError(f"module 'training' has no attribute {name!r}")


def __dir__():
  return sorted(set(globals()) | set(_EXPORTS))
