"""The run folder's guards: one process at a time, one config for its lifetime, no silent restart.

A run folder holds days of work, so nothing that happens to it may cost a good
checkpoint or a metrics line:

* :func:`exclusive` takes an ``fcntl.flock`` on ``run.lock`` before anything
  else is written; the operating system releases it however the process ends
  (``kill -9`` included). A second process stops at once, naming the holder.
* :func:`check_identity` compares the config with every record of the config
  the folder was started with (``identity.json``, ``config.yaml`` and the
  metadata of each checkpoint), so one deleted file cannot erase it.
* :func:`describe_history` tells whether the folder holds work that a start
  from step 0 would throw away; the trainer then refuses to start over by
  itself, and :func:`set_aside` (``--restart``) moves the old contents into a
  timestamped folder, never deleting them.

Example:

>>> import tempfile
>>> workdir = tempfile.mkdtemp()
>>> with exclusive(workdir):
...   record_identity(workdir, {"seed": 0, "model": {"hidden": 8}})
...   check_identity(workdir, {"seed": 0, "model": {"hidden": 8}}, {})
>>> describe_history(workdir, first_checkpoint_step=5) is None
True
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any

import yaml

from training import files
from training.config_files import ConfigError

LOCK_FILE = "run.lock"
IDENTITY_FILE = "identity.json"
PREVIOUS_RUNS = "previous_runs"  # where --restart moves the old contents
STEP_FOLDER = re.compile(r"\d+")
SET_ASIDE_FOLDER = re.compile(r"\d+(\.\d+)?")
# Files a run rewrites in place or appends to: a read-only or immutable one stops the run before it starts.
REWRITTEN_FILES = (LOCK_FILE, "metrics.jsonl", "config.yaml", IDENTITY_FILE, "summary.json")
# Keys that change what is shown, not what is computed: a resumed run may change them.
DISPLAY_KEYS = frozenset({"train.progress_bar", "train.log_every", "train.eval_batch_size"})


class RunFolderBusyError(RuntimeError):
  """Another process holds the run folder's lock."""


def identity(config: Mapping[str, Any]) -> dict[str, Any]:
  """What makes a run what it is: the config (``model_dump(mode="json")``) as ``{"a.b": value}``, without display-only keys."""
  from flax import traverse_util  # pylint: disable=g-import-not-at-top  # loads JAX: only the trainer needs it

  flat = traverse_util.flatten_dict(dict(config), sep=".")
  return {k: v for k, v in sorted(flat.items()) if k not in DISPLAY_KEYS}


def fingerprint(config: Mapping[str, Any]) -> str:
  """SHA-256 of :func:`identity`: equal for configs that compute the same run."""
  return hashlib.sha256(json.dumps(identity(config), sort_keys=True).encode()).hexdigest()


def checkpoint_metadata(config: Mapping[str, Any]) -> dict[str, Any]:
  """The identity stored inside every checkpoint's metadata."""
  return {"config": identity(config), "config_sha256": fingerprint(config)}


@contextlib.contextmanager
def exclusive(workdir: str) -> Iterator[None]:
  """Holds ``workdir``'s lock (creating the folder) for the ``with`` block.

  Raises:
    RunFolderBusyError: another process holds it; the message names the folder and the holder.
  """
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, LOCK_FILE)
  with files.writing(workdir, LOCK_FILE):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    _lock_or_refuse(fd, workdir)
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()}, started {started}\n".encode(), 0)
    yield
  finally:
    os.close(fd)  # releases the lock; the file stays (deleting it would race with a waiting process)


def check_writable(workdir: str) -> None:
  """Refuses a run folder (or its ``checkpoints/``) that is read-only, or whose files cannot be rewritten.

  Raises:
    training.files.DiskFault: naming the folder or file.
  """
  files.check_writable(workdir, REWRITTEN_FILES)
  ckpt_dir = os.path.join(workdir, "checkpoints")
  if os.path.isdir(ckpt_dir):
    files.check_writable(ckpt_dir)


def check_not_busy(workdir: str) -> None:
  """Fails at once when another process holds ``workdir``'s lock (the lock is not kept; see :func:`exclusive`).

  Raises:
    RunFolderBusyError: naming the holder.
  """
  path = os.path.join(workdir, LOCK_FILE)
  if not os.path.isfile(path):
    return
  with contextlib.suppress(PermissionError):  # check_writable names a read-only lock file
    fd = os.open(path, os.O_RDONLY)
    try:
      _lock_or_refuse(fd, workdir)
    finally:
      os.close(fd)


def folder_size(path: str) -> int:
  """Bytes of the files under ``path``."""
  return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)


def check_space(ckpt_dir: str, latest_step: int) -> None:
  """Refuses to train when the disk has less room than the latest checkpoint takes: the next save would fail.

  Raises:
    training.files.DiskFault: naming the folder, the free space and the room needed.
  """
  needed = folder_size(os.path.join(ckpt_dir, str(latest_step)))
  free = files.free_bytes(ckpt_dir)
  if free is not None and free < needed:
    raise files.DiskFault(
      errno.ENOSPC,
      folder=os.path.abspath(ckpt_dir),
      free=free,
      what=f"the next checkpoint (checkpoint {latest_step} takes {files.format_bytes(needed)})",
    )


def _lock_or_refuse(fd: int, workdir: str) -> None:
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown"
    raise RunFolderBusyError(
      f"{workdir} is in use by another process ({holder}); wait for it to end, or choose another --workdir"
    ) from None


def _recorded(
  workdir: str, checkpoints: Mapping[int, Mapping[str, Any]]
) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, str]]]:
  """``(where, identity)`` of every record of the config the folder was started with, and ``(path, why)`` of the damaged ones."""
  records, damaged = [], []
  path = os.path.join(workdir, IDENTITY_FILE)
  if os.path.exists(path):
    try:
      with open(path, encoding="utf-8") as f:
        saved = json.load(f)
      if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict):
        raise ValueError('it holds no "config" mapping')
      records.append((path, saved["config"]))
    except (OSError, ValueError) as e:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
      damaged.append((path, str(e) or type(e).__name__))
  path = os.path.join(workdir, "config.yaml")
  if os.path.exists(path):
    try:
      with open(path, encoding="utf-8") as f:
        saved = yaml.safe_load(f)
      if not isinstance(saved, dict):
        raise ValueError(
          "it is empty" if saved is None else f"it holds a {type(saved).__name__}, not a mapping of keys"
        )
      records.append((path, identity(saved)))
    except (OSError, ValueError, yaml.YAMLError) as e:
      damaged.append((path, " ".join(str(e).split())[:200] or type(e).__name__))
  for step, metadata in sorted(checkpoints.items()):
    if isinstance(metadata.get("config"), dict):
      records.append((f"checkpoint {step}", metadata["config"]))
  return records, damaged


def check_identity(workdir: str, config: Mapping[str, Any], checkpoints: Mapping[int, Mapping[str, Any]]) -> None:
  """Refuses a config other than the one ``workdir`` was started with, and a damaged record of it.

  Args:
    workdir: the run folder.
    config: the config as ``model_dump(mode="json")``.
    checkpoints: ``{step: custom metadata}`` of its checkpoints.

  Raises:
    ConfigError: naming the differing keys and where the saved config was
      found; or naming a damaged ``config.yaml`` or ``identity.json``, what the
      other records say, and how to proceed.
  """
  current = identity(config)
  records, damaged = _recorded(workdir, checkpoints)
  for where, saved in records:
    saved = _read_today(saved)
    differing = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    if differing:
      raise ConfigError(
        f"{workdir} holds a run with a different config: {where} differs in {differing}; "
        "rerun with the same config to resume, or choose another --workdir"
      )
  if damaged:
    others = [where for where, _ in records]
    agree = (
      f"the other records of the run's config ({', '.join(others)}) match this config"
      if others
      else "no other record of the run's config is left to compare this config with"
    )
    broken = "; ".join(f"{path} is damaged ({why})" for path, why in damaged)
    raise ConfigError(
      f"{broken}. {agree[0].upper() + agree[1:]}. Nothing was changed: move the damaged file(s) out of {workdir} "
      "and rerun the same command (a run that trains on writes them again from this config)"
      + ("" if others else " (make sure it is the config the run was started with)")
    )


def _read_today(saved: dict[str, Any]) -> dict[str, Any]:
  """A saved identity read with today's schema: options added since it was written take their defaults.

  So a folder made before an option existed resumes when the option keeps its
  default (the computation it always had); a record today's schema cannot
  read is compared as it is.
  """
  import pydantic  # pylint: disable=g-import-not-at-top
  from flax import traverse_util  # pylint: disable=g-import-not-at-top

  from training import schema  # pylint: disable=g-import-not-at-top

  try:
    config = schema.TrainConfig.model_validate(traverse_util.unflatten_dict(saved, sep="."))
  except pydantic.ValidationError:
    return saved
  return identity(config.model_dump(mode="json"))


def record_identity(workdir: str, config: Mapping[str, Any]) -> None:
  """Writes ``identity.json`` (atomically) unless it is there already."""
  path = os.path.join(workdir, IDENTITY_FILE)
  if os.path.exists(path):
    return
  with files.atomic_write(path) as f:
    json.dump(checkpoint_metadata(config), f, indent=2)


def describe_history(workdir: str, *, first_checkpoint_step: int, metrics_steps: list[int] = ()) -> str | None:
  """What work a fresh start would throw away, or ``None`` when there is none.

  Args:
    workdir: the run folder.
    first_checkpoint_step: the step of the run's first checkpoint; metrics
      beyond it mean a checkpoint was saved once (records up to it are redone
      cheaply after a kill before the first save).
    metrics_steps: the steps of the readable ``metrics.jsonl`` records.
  """
  found = []
  # A step folder is named by its step; one set aside twice gets a copy number (8.2). Orbax's
  # temporary folders of unfinished saves (12.orbax-checkpoint-tmp-...) are not checkpoints.
  for name, pattern in (("checkpoints", STEP_FOLDER), ("unreadable_checkpoints", SET_ASIDE_FOLDER)):
    path = os.path.join(workdir, name)
    if os.path.isdir(path) and any(pattern.fullmatch(entry) for entry in os.listdir(path)):
      found.append(f"step folders in {path}")
  if metrics_steps and max(metrics_steps) > first_checkpoint_step:
    found.append(f"{len(metrics_steps)} metrics records up to step {max(metrics_steps)}")
  return "; ".join(found) or None


def no_fresh_start_message(workdir: str, history: str) -> str:
  """Why a run folder with history and no readable checkpoint is not trained from step 0."""
  return (
    f"{workdir} holds earlier work ({history}) but no readable checkpoint, so the run cannot resume; "
    "it is never started again from step 0 by itself. To start over on purpose, rerun with --restart "
    f"(the old contents move to {os.path.join(workdir, PREVIOUS_RUNS, '<time>')}), or choose another --workdir"
  )


def set_aside(workdir: str) -> str | None:
  """Moves the contents of ``workdir`` (not its lock, nor earlier set-aside runs) into ``previous_runs/<UTC time>/``.

  Returns:
    The folder they were moved to, or ``None`` when there was nothing to move.
  """
  names = (
    [n for n in sorted(os.listdir(workdir)) if n not in (LOCK_FILE, PREVIOUS_RUNS)] if os.path.isdir(workdir) else []
  )
  if not names:
    return None
  stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
  target = os.path.join(workdir, PREVIOUS_RUNS, stamp)
  os.makedirs(target)
  for name in names:
    shutil.move(os.path.join(workdir, name), os.path.join(target, name))
  return target
