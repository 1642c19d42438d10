"""Checkpoints of the training state with orbax: the latest N and the best, resumable.

Orbax writes each step into a temporary folder and renames it when complete,
so a run killed during a save leaves the previous checkpoints intact and no
half-written step that could be mistaken for a finished one. A checkpoint that
cannot be read (a damaged disk, a truncated copy) is moved aside to
``unreadable/`` with a warning, and the previous one is restored instead; when
none can be read the run stops with :class:`CheckpointError`, never silently
starting from scratch.

Example:

>>> import tempfile, jax.numpy as jnp
>>> ckpt = Checkpoints(tempfile.mkdtemp(), keep=2)
>>> for step in (1, 2, 3):
...   ckpt.save(step, {"w": jnp.full(2, step)}, metrics={"test_loss": 1.0 / step})
>>> ckpt.steps()
[2, 3]
>>> step, state = ckpt.restore_latest({"w": jnp.zeros(2, jnp.int32)})
>>> step, state["w"].tolist()
(3, [3, 3])
>>> ckpt.close()
"""

from __future__ import annotations

import json
import math
import os
import shutil
import warnings
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies


class CheckpointError(RuntimeError):
  """No checkpoint of a run folder that has checkpoints could be read."""


class CheckpointWarning(UserWarning):
  """A checkpoint could not be read and was moved aside; an older one is used."""


def _abstract(tree: Any) -> Any:
  """Shapes, dtypes and shardings of ``tree``: the restore target."""
  return jax.tree_util.tree_map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)), tree
  )


def _damaged_steps(directory: str) -> list[tuple[int, str]]:
  """Finished steps whose JSON metadata cannot be parsed (orbax cannot even list those)."""
  if not os.path.isdir(directory):
    return []
  damaged = []
  for name in sorted(os.listdir(directory)):
    if not name.isdigit():
      continue  # temporary folders of unfinished saves are orbax's to clean up
    for relative in ("_CHECKPOINT_METADATA", os.path.join("metrics", "metrics")):
      path = os.path.join(directory, name, relative)
      if not os.path.exists(path):
        continue
      try:
        with open(path, encoding="utf-8") as f:
          json.load(f)
      except (ValueError, UnicodeDecodeError) as e:
        damaged.append((int(name), f"{relative} is not valid JSON: {e}"))
        break
  return damaged


class Checkpoints:
  """The checkpoints of one run folder.

  Args:
    directory: where the step folders live (created if missing).
    keep: N, how many of the latest checkpoints to keep.
    best_metric: the metric saved with a checkpoint that ranks it; the
      checkpoint with the lowest value is kept besides the latest N.
  """

  def __init__(self, directory: str, *, keep: int, best_metric: str = "test_loss"):
    if not isinstance(keep, int) or keep < 1:
      raise ValueError(f"keep must be a positive integer, got {keep!r}")
    self.directory = os.path.abspath(directory)
    self.best_metric = best_metric
    # A checkpoint saved without an evaluation ranks last.
    score = lambda metrics: float(metrics.get(best_metric, math.inf))  # noqa: E731
    preservation = policies.AnyPreservationPolicy([
        policies.LatestN(n=keep),
        # reverse=True sorts from the highest to the lowest value and keeps the last: the lowest.
        policies.BestN(get_metric_fn=score, reverse=True, n=1, keep_checkpoints_without_metrics=False),
    ])
    self._options = ocp.CheckpointManagerOptions(
        preservation_policy=preservation,
        best_fn=score,  # also makes orbax store the metrics beside each checkpoint
        best_mode="min",
        # Synchronous saves: a checkpoint is on disk before training goes on,
        # so what a kill can lose is bounded by the checkpoint interval.
        enable_async_checkpointing=False,
        cleanup_tmp_directories=True,  # remove the leftovers of a save cut short by a kill
    )
    self._failures: list[str] = []  # why checkpoints of this folder could not be read
    for step, reason in _damaged_steps(self.directory):
      self._set_aside(step, reason)
    self._manager = ocp.CheckpointManager(self.directory, options=self._options)

  def steps(self) -> list[int]:
    """Steps with a finished checkpoint, oldest first."""
    return sorted(self._manager.all_steps())

  def save(self, step: int, state: Any, *, metrics: dict[str, float] | None = None) -> None:
    """Saves ``state`` (a pytree of arrays) as ``step``; ``metrics`` rank it for the best one."""
    self._manager.save(step, args=ocp.args.StandardSave(state), metrics=dict(metrics or {}), force=True)
    self._manager.wait_until_finished()

  def best(self) -> tuple[int, float] | None:
    """``(step, value)`` of the kept checkpoint with the lowest ``best_metric``, if any has one."""
    scored = []
    for step in self.steps():
      metrics = self._manager.metrics(step)
      if metrics and self.best_metric in metrics:
        scored.append((float(metrics[self.best_metric]), step))
    return (min(scored)[1], min(scored)[0]) if scored else None

  def restore_latest(self, like: Any) -> tuple[int, Any] | None:
    """Restores the latest readable checkpoint into the structure, shapes and shardings of ``like``.

    Returns:
      ``(step, state)``, or ``None`` when the folder has no checkpoint.

    Raises:
      CheckpointError: there are checkpoints but none can be read.
    """
    for step in reversed(self.steps()):
      try:
        state = self._manager.restore(step, args=ocp.args.StandardRestore(_abstract(like)))
      except Exception as e:  # pylint: disable=broad-except  # any failure to read means: try the one before
        self._set_aside(step, f"{type(e).__name__}: {str(e)[:300]}")
        self._manager.reload()
        continue
      return step, state
    if self._failures:
      raise CheckpointError(
          f"none of the checkpoints in {self.directory} can be read, so the run cannot resume "
          f"(they were moved to {self._aside_dir()}). Delete the run folder or choose another --workdir "
          f"to start from scratch. Failures: " + "; ".join(self._failures)
      )
    return None

  def restore(self, step: int, like: Any) -> Any:
    """Restores checkpoint ``step`` (e.g. the best one) into the structure, shapes and shardings of ``like``."""
    return self._manager.restore(step, args=ocp.args.StandardRestore(_abstract(like)))

  def _aside_dir(self) -> str:
    return os.path.join(os.path.dirname(self.directory), "unreadable_checkpoints")

  def _set_aside(self, step: int, reason: str) -> None:
    """Moves an unreadable step out of orbax's view, keeping it for inspection, with a warning."""
    self._failures.append(f"step {step}: {reason}")
    if jax.process_count() > 1:  # moving files under other processes' feet is not safe
      raise CheckpointError(f"checkpoint {step} in {self.directory} cannot be read ({reason}); remove it to resume")
    os.makedirs(self._aside_dir(), exist_ok=True)
    source = os.path.join(self.directory, str(step))
    target = os.path.join(self._aside_dir(), str(step))
    if os.path.exists(target):
      shutil.rmtree(target)
    if os.path.exists(source):
      shutil.move(source, target)
    warnings.warn(
        f"checkpoint {step} in {self.directory} cannot be read ({reason[:200]}); "
        f"moved it to {target}; the previous checkpoint is used instead",
        CheckpointWarning,
        stacklevel=3,
    )

  def close(self) -> None:
    """Waits for pending writes and releases the manager."""
    self._manager.close()
