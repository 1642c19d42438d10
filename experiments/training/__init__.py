"""Config-driven training of jaxgru models: tasks, optax optimizers, orbax checkpoints, logs and plots.

Run a config with ``python experiments/train.py --config configs/<name>.yaml``;
from Python, :func:`train_and_evaluate` does the same. Needs the ``train``
extra (``pip install -e ".[train]"``).
"""

from jaxgru.training.checkpoint import CheckpointError
from jaxgru.training.checkpoint import Checkpoints
from jaxgru.training.energy import DataError
from jaxgru.training.schema import TrainConfig
from jaxgru.training.trainer import NonFiniteLossError
from jaxgru.training.trainer import TrainState
from jaxgru.training.trainer import create_train_state
from jaxgru.training.trainer import eval_step
from jaxgru.training.trainer import train_and_evaluate
from jaxgru.training.trainer import train_step

__all__ = (
    "CheckpointError",
    "Checkpoints",
    "DataError",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainState",
    "create_train_state",
    "eval_step",
    "train_and_evaluate",
    "train_step",
)
