"""Config-driven training of jaxgru models: tasks, optax optimizers, orbax checkpoints, logs and plots.

Run a config with ``python experiments/train.py --config configs/<name>.yaml``;
from Python, :func:`train_and_evaluate` does the same. Needs the ``train``
extra (``pip install -e ".[train]"``).
"""

from training.checkpoint import CheckpointError
from training.checkpoint import Checkpoints
from training.energy import DataError
from training.inference import Run
from training.inference import forecast
from training.inference import load_run
from training.schema import TrainConfig
from training.trainer import NonFiniteLossError
from training.trainer import TrainState
from training.trainer import create_train_state
from training.trainer import eval_step
from training.trainer import train_and_evaluate
from training.trainer import train_step

__all__ = (
    "CheckpointError",
    "Checkpoints",
    "DataError",
    "NonFiniteLossError",
    "Run",
    "TrainConfig",
    "TrainState",
    "create_train_state",
    "eval_step",
    "forecast",
    "load_run",
    "train_and_evaluate",
    "train_step",
)
