"""Shared builders of the training tests: tiny configs and finished runs to copy."""

from training import schema
from training.config_files import validate


def tiny_config(task, **sections):
  """A validated config of a tiny model; ``sections`` update the defaults, e.g. ``train={"num_steps": 6}``."""
  data = {
    "seed": 0,
    "task": task,
    # One layer: compiling is most of a tiny run's time; the tests of resuming and of
    # several devices use two layers with dropout between them.
    "model": {"hidden": 16, "num_layers": 1},
    "optimizer": {"learning_rate": 1e-2},
    "train": {"batch_size": 16, "num_steps": 30, "log_every": 5, "eval_every": 15, "progress_bar": False},
  }
  for name, values in sections.items():
    data[name] = {**data[name], **values} if isinstance(values, dict) else values
  return validate(schema.TrainConfig, data, "test")
