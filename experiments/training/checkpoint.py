"""Checkpoints of the training state with orbax: the latest N and the best, resumable.

Orbax writes each step into a temporary folder and renames it when complete,
so a run killed during a save leaves the previous checkpoints intact and no
half-written step that could be mistaken for a finished one. A checkpoint that
cannot be read (a damaged disk, a truncated copy) is moved aside to
``unreadable_checkpoints/`` (never deleted) with a warning naming it, and the
newest readable one is restored instead; each step folder is judged on its own.
When none can be read the run stops with :class:`CheckpointError`, never
silently starting from scratch.

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

import contextlib
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


def _step_folders(directory: str) -> list[str]:
  """Names of the finished step folders (temporary folders of unfinished saves are orbax's to clean up)."""
  return sorted((n for n in os.listdir(directory) if n.isdigit()), key=int) if os.path.isdir(directory) else []


def _read_step_metadata(directory: str, name: str) -> dict:
  """Orbax's ``_CHECKPOINT_METADATA`` of a step folder, checked to be a JSON object.

  Raises:
    ValueError: it is missing, unreadable or not a JSON object.
  """
  path = os.path.join(directory, name, "_CHECKPOINT_METADATA")
  try:
    with open(path, encoding="utf-8") as f:
      metadata = json.load(f)
  except (OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
    raise ValueError(f"_CHECKPOINT_METADATA cannot be read: {type(e).__name__}: {e}") from None
  if not isinstance(metadata, dict):
    raise ValueError("_CHECKPOINT_METADATA is not a JSON object")
  return metadata


def _damaged_steps(directory: str) -> list[tuple[int, str]]:
  """Step folders that are visibly incomplete or damaged, each judged on its own.

  Orbax cannot list these, and one of them among good ones can make it misread
  the layout of all of them.
  """
  damaged = []
  for name in _step_folders(directory):
    try:
      _read_step_metadata(directory, name)
      if not os.path.isdir(os.path.join(directory, name, "default")):
        raise ValueError("its default/ item is missing")
      metrics = os.path.join(directory, name, "metrics", "metrics")
      if os.path.exists(metrics):
        with open(metrics, encoding="utf-8") as f:
          json.load(f)
    except (OSError, ValueError) as e:
      damaged.append((int(name), str(e)))
  return damaged


def intact_steps(directory: str) -> list[int]:
  """Steps whose folders look complete (restoring them may still fail), oldest first."""
  damaged = {step for step, _ in _damaged_steps(directory)}
  return [int(name) for name in _step_folders(directory) if int(name) not in damaged]


def saved_metadata(directory: str) -> dict[int, dict]:
  """``{step: custom metadata}`` of the step folders whose metadata can be read (no orbax manager needed)."""
  saved = {}
  for name in _step_folders(directory):
    with contextlib.suppress(ValueError):
      custom = _read_step_metadata(directory, name).get("custom_metadata")
      saved[int(name)] = custom if isinstance(custom, dict) else {}
  return saved


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

  def save(
      self, step: int, state: Any, *, metrics: dict[str, float] | None = None, custom_metadata: dict | None = None
  ) -> None:
    """Saves ``state`` (a pytree of arrays) as ``step``; ``metrics`` rank it for the best one.

    ``custom_metadata`` (JSON) is stored in the step's metadata and read back by :func:`saved_metadata`.
    """
    self._manager.save(
        step,
        args=ocp.args.StandardSave(state),
        metrics=dict(metrics or {}),
        custom_metadata=dict(custom_metadata or {}),
        force=True,
    )
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
          f"(they were moved to {self._aside_dir()}, not deleted). It is never started again from step 0 by "
          "itself: to start over on purpose, rerun with --restart (the old contents are moved aside), or choose "
          "another --workdir. Failures: " + "; ".join(self._failures)
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
    copies = 1
    while os.path.exists(target):  # an earlier step of the same number was set aside: keep both
      copies += 1
      target = os.path.join(self._aside_dir(), f"{step}.{copies}")
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
