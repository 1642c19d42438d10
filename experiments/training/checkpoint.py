"""Checkpoints of the training state with orbax: the latest N and the best, resumable.

Everything goes through orbax's public API (``CheckpointManager``, its
``metadata(step)``, ``best_step()`` and partial restores); no orbax file is read
here. Orbax writes each step into a temporary folder and renames it when complete,
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
import io
import logging
import math
import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from training import files


class CheckpointError(RuntimeError):
  """No checkpoint of a run folder that has checkpoints could be read."""


class CheckpointWarning(UserWarning):
  """A checkpoint could not be read and was moved aside; an older one is used."""


def _abstract(tree: Any) -> Any:
  """Shapes, dtypes and shardings of ``tree``: the restore target."""
  return jax.tree_util.tree_map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)), tree
  )


@contextlib.contextmanager
def _quiet_orbax() -> Iterator[None]:
  """Silences orbax's log lines in the block (read-only notices, a damaged file's parse error).

  What matters reaches the user as this module's warnings and errors, and a
  command that stops prints one line, not orbax's notices above it.
  """
  logger = logging.getLogger("absl")
  level = logger.level
  logger.setLevel(logging.CRITICAL)
  try:
    yield
  finally:
    logger.setLevel(level)


@contextlib.contextmanager
def _read_only_manager(
  directory: str, *, item_handlers: Any = None, lightweight: bool = True, **options
) -> Iterator[ocp.CheckpointManager]:
  """A manager that reads ``directory`` through orbax's public API and writes nothing.

  ``lightweight_initialize`` reads no step's files on creation, so a damaged
  step cannot stop it; each step is then read on its own with ``metadata(step)``.
  The manager belongs to this process alone (orbax's ``active_processes``): in a
  multi-host run, process 0 reads the folder while the others wait for its
  decision, and no barrier may wait for them.
  """
  alone = ocp.options.MultiprocessingOptions(
    primary_host=jax.process_index(),
    active_processes={jax.process_index()},
    barrier_sync_key_prefix=f"read_only_{jax.process_index()}",
  )
  with _quiet_orbax():
    options = ocp.CheckpointManagerOptions(
      read_only=True, lightweight_initialize=lightweight, multiprocessing_options=alone, **options
    )
    manager = ocp.CheckpointManager(os.path.abspath(directory), options=options, item_handlers=item_handlers)
    try:
      yield manager
    finally:
      manager.close()


def survey(directory: str) -> dict[int, ocp.metadata.StepMetadata | str]:
  """Every step folder of ``directory``: its orbax metadata, or why it cannot be read.

  A step is damaged when orbax cannot read its metadata, its ``default`` item's
  tree or its metrics, or when it has no commit time (its metadata file is missing
  or unreadable). One such folder among good ones can make orbax misread them all,
  so each is judged on its own here, before a writing manager is opened.
  """
  if not os.path.isdir(directory):
    return {}
  # The item handler lets metadata(step) read the default item's tree: a missing or damaged one shows.
  with _read_only_manager(directory, item_handlers=ocp.StandardCheckpointHandler()) as manager:
    found = {}
    for step in manager.all_steps():
      try:
        metadata = manager.metadata(step)
        if metadata.commit_timestamp_nsecs is None:
          raise ValueError("its checkpoint metadata is missing or cannot be read")
        if metadata.item_metadata is None:
          raise ValueError("its default/ item is missing")
        found[step] = metadata
      except Exception as e:  # pylint: disable=broad-except  # any failure to read means: damaged
        found[step] = f"{type(e).__name__}: {str(e)[:300]}"
    return found


def intact_steps(directory: str) -> list[int]:
  """Steps whose metadata orbax can read (restoring them may still fail), oldest first."""
  return sorted(step for step, found in survey(directory).items() if not isinstance(found, str))


def saved_metadata(directory: str) -> dict[int, dict]:
  """``{step: custom metadata}`` of the steps whose metadata orbax can read."""
  return {
    step: dict(found.custom_metadata or {}) for step, found in survey(directory).items() if not isinstance(found, str)
  }


def _score(best_metric: str):
  """Orbax's ``best_fn``: a checkpoint saved without an evaluation ranks last."""
  return lambda metrics: float(metrics.get(best_metric, math.inf))


def best_step(directory: str, *, best_metric: str = "test_loss") -> int | None:
  """Orbax's ``best_step()`` of ``directory``, read-only: the lowest ``best_metric``, else the latest step.

  Returns:
    The step, or ``None`` when there is no checkpoint.

  Raises:
    CheckpointError: a step folder cannot be read (orbax would misread the others).
  """
  damaged = {step: why for step, why in survey(directory).items() if isinstance(why, str)}
  if damaged:
    raise CheckpointError(
      f"checkpoint(s) {sorted(damaged)} in {directory} cannot be read ({'; '.join(damaged.values())[:300]}); "
      f"move them out of {directory} (e.g. to {os.path.join(os.path.dirname(directory), 'unreadable_checkpoints')}) "
      "and rerun the same command"
    )
  # Not lightweight: best_step() ranks the metrics read when the manager opens.
  with _read_only_manager(directory, lightweight=False, best_fn=_score(best_metric), best_mode="min") as manager:
    return manager.best_step()


def restore_params(directory: str, step: int, like: Any) -> Any:
  """Restores only the ``params`` of the training state saved as ``step``, into the shapes of ``like``.

  Reads the parameters alone (orbax's partial restore): no optimizer needs to be
  built, and the optimizer state is not read. Works for every checkpoint of a
  :class:`training.step.TrainState`, those written before this function included.
  """
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree_util.tree_map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding or device), _abstract(like)
  )
  with _read_only_manager(directory) as manager:  # no item handler: the restore args choose it
    item = {"params": target}
    args = ocp.args.PyTreeRestore(
      item=item, restore_args=ocp.checkpoint_utils.construct_restore_args(item), partial_restore=True
    )
    restored = manager.restore(step, args=args)
  return restored["params"]


def _aside_dir(directory: str) -> str:
  return os.path.join(os.path.dirname(directory), "unreadable_checkpoints")


def _move_aside(directory: str, step: int, reason: str) -> None:
  """Moves an unreadable step out of orbax's view, keeping it for inspection, with a warning."""
  aside = _aside_dir(directory)
  os.makedirs(aside, exist_ok=True)
  source = os.path.join(directory, str(step))
  target = os.path.join(aside, str(step))
  copies = 1
  while os.path.exists(target):  # an earlier step of the same number was set aside: keep both
    copies += 1
    target = os.path.join(aside, f"{step}.{copies}")
  if os.path.exists(source):
    shutil.move(source, target)
  warnings.warn(
    f"checkpoint {step} in {directory} cannot be read ({reason[:200]}); "
    f"moved it to {target}; the previous checkpoint is used instead",
    CheckpointWarning,
    stacklevel=4,
  )


def set_aside_unreadable(directory: str) -> list[str]:
  """Moves every step folder of ``directory`` that orbax cannot read to ``unreadable_checkpoints/``.

  Nothing is deleted; each move is announced by a :class:`CheckpointWarning`.
  Only one process may call it, before any process opens ``directory``.

  Returns:
    ``"step N: why"`` for each folder moved.
  """
  directory = os.path.abspath(directory)
  moved = []
  for step, found in survey(directory).items():
    if isinstance(found, str):
      _move_aside(directory, step, found)
      moved.append(f"step {step}: {found}")
  return moved


class Checkpoints:
  """The checkpoints of one run folder.

  Args:
    directory: where the step folders live (created if missing).
    keep: N, how many of the latest checkpoints to keep.
    best_metric: the metric saved with a checkpoint that ranks it; the
      checkpoint with the lowest value is kept besides the latest N.
    set_aside: first move the step folders orbax cannot read aside
      (:func:`set_aside_unreadable`). A multi-host run has process 0 do it
      before any process opens the folder, and passes ``False``.
  """

  def __init__(self, directory: str, *, keep: int, best_metric: str = "test_loss", set_aside: bool = True):
    if not isinstance(keep, int) or keep < 1:
      raise ValueError(f"keep must be a positive integer, got {keep!r}")
    self.directory = os.path.abspath(directory)
    self.best_metric = best_metric
    score = _score(best_metric)
    preservation = policies.AnyPreservationPolicy(
      [
        policies.LatestN(n=keep),
        # reverse=True sorts from the highest to the lowest value and keeps the last: the lowest.
        policies.BestN(get_metric_fn=score, reverse=True, n=1, keep_checkpoints_without_metrics=False),
      ]
    )
    self._options = ocp.CheckpointManagerOptions(
      preservation_policy=preservation,
      best_fn=score,  # also makes orbax store the metrics beside each checkpoint
      best_mode="min",
      # Synchronous saves: a checkpoint is on disk before training goes on,
      # so what a kill can lose is bounded by the checkpoint interval.
      enable_async_checkpointing=False,
      # Removes the *.orbax-checkpoint-tmp-* folders of a save cut short (a kill, a full disk);
      # orbax never lists them as steps.
      cleanup_tmp_directories=True,
    )
    # Why checkpoints of this folder could not be read.
    self._failures: list[str] = set_aside_unreadable(self.directory) if set_aside else []
    self._faulted = False  # a save failed on a full or read-only disk
    self._manager = ocp.CheckpointManager(self.directory, options=self._options)

  def steps(self) -> list[int]:
    """Steps with a finished checkpoint, oldest first."""
    return sorted(self._manager.all_steps())

  def save(
    self, step: int, state: Any, *, metrics: dict[str, float] | None = None, custom_metadata: dict | None = None
  ) -> None:
    """Saves ``state`` (a pytree of arrays) as ``step``; ``metrics`` rank it for the best one.

    ``custom_metadata`` (JSON) is stored in the step's metadata and read back by :func:`saved_metadata`.

    Raises:
      training.files.DiskFault: the disk is full or the folder may not be written; the
        unfinished step stays in orbax's temporary folder, removed when the folder is next opened.
    """
    # Orbax's writer threads log each failed write with a traceback (and asyncio adds its own):
    # held back here, and shown only when the save fails for another reason than the disk.
    noise = io.StringIO()
    try:
      with files.writing(self.directory, f"checkpoint {step}"), _quiet_orbax(), contextlib.redirect_stderr(noise):
        self._manager.save(
          step,
          args=ocp.args.StandardSave(state),
          metrics=dict(metrics or {}),
          custom_metadata=dict(custom_metadata or {}),
          force=True,
        )
        self._manager.wait_until_finished()
    except files.DiskFault:
      self._faulted = True
      raise
    except BaseException:
      sys.stderr.write(noise.getvalue())
      raise
    sys.stderr.write(noise.getvalue())

  def best(self) -> tuple[int, float] | None:
    """``(step, value)`` of the kept checkpoint with the lowest ``best_metric``, if any has one."""
    step = self._manager.best_step()
    metrics = self._manager.metrics(step) if step is not None else None
    if not metrics or self.best_metric not in metrics:  # orbax falls back to the latest step
      return None
    return step, float(metrics[self.best_metric])

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
        f"(they were moved to {_aside_dir(self.directory)}, not deleted). It is never started again from step 0 by "
        "itself: to start over on purpose, rerun with --restart (the old contents are moved aside), or choose "
        "another --workdir. Failures: " + "; ".join(self._failures)
      )
    return None

  def restore(self, step: int, like: Any) -> Any:
    """Restores checkpoint ``step`` (e.g. the best one) into the structure, shapes and shardings of ``like``."""
    return self._manager.restore(step, args=ocp.args.StandardRestore(_abstract(like)))

  def _set_aside(self, step: int, reason: str) -> None:
    self._failures.append(f"step {step}: {reason}")
    if jax.process_count() > 1:  # the other processes are reading the folder now
      raise CheckpointError(f"checkpoint {step} in {self.directory} cannot be read ({reason}); move it aside to resume")
    _move_aside(self.directory, step, reason)

  def close(self) -> None:
    """Waits for pending writes and releases the manager."""
    noise = io.StringIO()
    with _quiet_orbax(), contextlib.redirect_stderr(noise):
      self._manager.close()
    if not self._faulted:  # after a full disk: the writer threads' tracebacks, already said in one line
      sys.stderr.write(noise.getvalue())
