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
    preservation = policies.AnyPreservationPolicy([
        policies.LatestN(n=keep),
        # reverse=True sorts from the highest to the lowest value and keeps the last: the lowest.
        policies.BestN(get_metric_fn=lambda m: m[best_metric], reverse=True, n=1, keep_checkpoints_without_metrics=False),
    ])
    self._options = ocp.CheckpointManagerOptions(
        preservation_policy=preservation,
        # Synchronous saves: a checkpoint is on disk before training goes on,
        # so what a kill can lose is bounded by the checkpoint interval.
        enable_async_checkpointing=False,
        cleanup_tmp_directories=True,  # remove the leftovers of a save cut short by a kill
    )
    self._manager = ocp.CheckpointManager(self.directory, options=self._options)

  def steps(self) -> list[int]:
    """Steps with a finished checkpoint, oldest first."""
    return sorted(self._manager.all_steps())

  def save(self, step: int, state: Any, *, metrics: dict[str, float] | None = None) -> None:
    """Saves ``state`` (a pytree of arrays) as ``step``; ``metrics`` rank it for the best one."""
    self._manager.save(step, args=ocp.args.StandardSave(state), metrics=metrics, force=True)
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
    failures = []
    for step in reversed(self.steps()):
      try:
        state = self._manager.restore(step, args=ocp.args.StandardRestore(_abstract(like)))
      except Exception as e:  # pylint: disable=broad-except  # any failure to read means: try the one before
        failures.append(f"step {step}: {type(e).__name__}: {str(e)[:300]}")
        self._move_aside(step)
        warnings.warn(
            f"checkpoint {step} in {self.directory} cannot be read ({type(e).__name__}: {str(e)[:200]}); "
            f"moved it to {self._aside_dir()} and trying the previous one",
            CheckpointWarning,
            stacklevel=2,
        )
        continue
      return step, state
    if failures:
      raise CheckpointError(
          f"none of the checkpoints in {self.directory} can be read, so the run cannot resume "
          f"(they were moved to {self._aside_dir()}). Delete the run folder or choose another --workdir "
          f"to start from scratch. Failures: " + "; ".join(failures)
      )
    return None

  def _aside_dir(self) -> str:
    return os.path.join(os.path.dirname(self.directory), "unreadable_checkpoints")

  def _move_aside(self, step: int) -> None:
    os.makedirs(self._aside_dir(), exist_ok=True)
    source = os.path.join(self.directory, str(step))
    target = os.path.join(self._aside_dir(), str(step))
    if os.path.exists(target):
      shutil.rmtree(target)
    if os.path.exists(source):
      shutil.move(source, target)
    self._manager.reload()

  def close(self) -> None:
    """Waits for pending writes and releases the manager."""
    self._manager.close()
