"""How a run folder opens: one decision, made by process 0 under the folder's lock, known to every process.

:func:`open_run_folder` is the first stage of
:func:`training.trainer.train_and_evaluate`: it checks that the folder may be
written, takes its lock, moves the old contents aside on ``--restart``,
refuses a config other than the folder's, tells a finished run, sets
unreadable checkpoints aside, refuses a folder with history but nothing to
resume, checks the disk's room and records the config; then every process
opens the checkpoints (:mod:`training.agreement`).
"""

from __future__ import annotations

import contextlib
import json
import os

from training import agreement
from training import checkpoint
from training import history
from training import run_folder
from training import schema
from training.config_files import dump_config


def readable_steps(ckpt_dir: str) -> list[int]:
  """The steps a rerun can resume from; none if the folder cannot even be read."""
  try:
    return checkpoint.intact_steps(ckpt_dir)
  except Exception:  # pylint: disable=broad-except  # only used to advise; the rerun judges again
    return []


def last_checkpoint(ckpt_dir: str) -> str:
  """``"last checkpoint at step N"`` or ``"no checkpoint yet"``: what a stopped run's message says it resumes from."""
  saved = readable_steps(ckpt_dir)
  return f"last checkpoint at step {saved[-1]}" if saved else "no checkpoint yet"


def _finished_summary(workdir: str, total_steps: int) -> dict | None:
  """The summary of a run that has trained all ``total_steps`` and written it, else ``None``."""
  if total_steps not in checkpoint.intact_steps(os.path.join(workdir, "checkpoints")):
    return None
  try:
    with open(os.path.join(workdir, "summary.json"), encoding="utf-8") as f:
      summary = json.load(f)
  except (OSError, ValueError):
    return None
  return summary if isinstance(summary, dict) and summary.get("steps") == total_steps else None


def open_run_folder(
  config: schema.TrainConfig,
  workdir: str,
  *,
  total_steps: int,
  first_checkpoint: int,
  restart: bool,
  guards: contextlib.ExitStack,
) -> checkpoint.Checkpoints | dict:
  """Makes ``workdir`` ready to train ``config`` up to ``total_steps``: writable, locked, of this config, with room for a checkpoint.

  Process 0 alone looks at the folder and decides (:func:`_decide`); every
  process then opens the checkpoints it left (:mod:`training.agreement`).
  Everything that ``guards`` must undo (the lock, the checkpoint manager) is
  registered with it.

  Returns:
    The run's :class:`~training.checkpoint.Checkpoints`, or the summary of a run that is finished.

  Raises:
    See :func:`training.trainer.train_and_evaluate`; on processes other than 0,
    :class:`training.agreement.MainProcessError` with process 0's message.
  """
  decision = agreement.decided_by_main(
    lambda: _decide(config, workdir, total_steps, first_checkpoint, restart=restart, guards=guards),
    what=f"how to open {workdir}",
  )
  if decision["finished"] is not None:
    return decision["finished"]
  ckpt = checkpoint.Checkpoints(
    os.path.join(workdir, "checkpoints"), keep=config.train.keep_checkpoints, set_aside=False
  )
  guards.callback(ckpt.close)
  return ckpt


def _decide(
  config: schema.TrainConfig,
  workdir: str,
  total_steps: int,
  first_checkpoint: int,
  *,
  restart: bool,
  guards: contextlib.ExitStack,
) -> dict:
  """Process 0's look at the run folder, under its lock: ``{"finished": summary or None}``.

  Takes the lock, sets the old contents aside (``restart``), checks the config
  against the folder's records, tells a finished run, sets unreadable
  checkpoints aside, refuses a folder with history but nothing to resume, checks
  the disk's room and records the config. Nothing else writes outside orbax.
  """
  config_json = config.model_dump(mode="json")
  ckpt_dir = os.path.join(workdir, "checkpoints")
  run_folder.check_writable(workdir)  # names a read-only folder, not the lock file it cannot open
  guards.enter_context(run_folder.exclusive(workdir))
  moved = run_folder.set_aside(workdir) if restart else None
  if moved:
    print(f"restarting: the previous contents of {workdir} were moved to {moved}", flush=True)
  metrics_steps = [r["step"] for r in history.read(os.path.join(workdir, "metrics.jsonl"))]
  earlier_work = run_folder.describe_history(
    workdir, first_checkpoint_step=first_checkpoint, metrics_steps=metrics_steps
  )
  if earlier_work:  # a folder without any is free to take a corrected config
    run_folder.check_identity(workdir, config_json, checkpoint.saved_metadata(ckpt_dir))
  finished = _finished_summary(workdir, total_steps)
  if finished is not None:
    print(f"the run in {workdir} is finished (step {total_steps}); its files are left as they are", flush=True)
    return {"finished": finished}
  os.makedirs(workdir, exist_ok=True)
  checkpoint.set_aside_unreadable(ckpt_dir)
  steps = checkpoint.intact_steps(ckpt_dir)
  if earlier_work and not steps:
    raise checkpoint.CheckpointError(run_folder.no_fresh_start_message(workdir, earlier_work))
  if steps:  # a disk still full after a stop says so now, not after training up to the next save
    run_folder.check_space(ckpt_dir, steps[-1])
  dump_config(config, os.path.join(workdir, "config.yaml"))
  run_folder.record_identity(workdir, config_json)
  return {"finished": None}
