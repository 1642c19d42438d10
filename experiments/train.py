"""Trains a model from a YAML config; rerunning the same command resumes the run.

    python experiments/train.py --config configs/energy_default.yaml [key.sub=value ...] [--workdir runs/x] [--restart]

Ctrl-C or SIGTERM stop it with one line (exit status 130 or 143); the same
command then resumes. ``--restart`` moves an old run folder's contents aside
and starts over. A bad config or data file, a busy or read-only run folder and
a full disk end with one line (``error: ...``) and exit status 1; the config,
the data and the folder are checked before JAX loads.

This file is intentionally kept short: the work happens in
:func:`training.trainer.train_and_evaluate`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from training import baselines
from training import dayahead_report
from training import energy
from training import files
from training import run_folder
from training import tasks
from training.config_files import ConfigError
from training.config_files import load_config
from training.schema import TrainConfig

# jax.distributed's bounds, set explicitly (jax's own defaults: 100 s and 300 s). A process that
# sends no heartbeat for HEARTBEAT_TIMEOUT_S is declared lost and every other process stops; the
# processes must all have joined within JOIN_TIMEOUT_S of the first. Orbax's own barriers wait on
# the same coordination service, so a lost process ends them within the heartbeat bound too.
HEARTBEAT_TIMEOUT_S = 30
JOIN_TIMEOUT_S = 300


def _positive_seconds(text: str) -> int:
  try:
    value = int(text)
  except ValueError:
    value = 0
  if value <= 0:
    raise argparse.ArgumentTypeError(f"expected a whole number of seconds above 0, got {text!r}")
  return value


def build_parser() -> argparse.ArgumentParser:
  """The command line; add options here."""
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", required=True, help="YAML config file, e.g. configs/energy_default.yaml")
  parser.add_argument("--workdir", help="run folder (default: runs/<config name>); rerun to resume")
  parser.add_argument(
    "--restart",
    action="store_true",
    help="start the run folder over: its contents move to <workdir>/previous_runs/<time>/ (nothing is deleted)",
  )
  parser.add_argument(
    "--distributed",
    action="store_true",
    help="call jax.distributed.initialize() first (one process per host; see experiments/README.md)",
  )
  parser.add_argument("--coordinator", help="with --distributed: host:port of process 0 (else auto-detected)")
  parser.add_argument("--num-processes", type=int, help="with --distributed: number of processes (else auto-detected)")
  parser.add_argument("--process-id", type=int, help="with --distributed: this process's index (else auto-detected)")
  parser.add_argument(
    "--heartbeat-timeout",
    type=_positive_seconds,
    default=HEARTBEAT_TIMEOUT_S,
    help="with --distributed: seconds without a heartbeat after which a process counts as lost and the run stops "
    f"(default {HEARTBEAT_TIMEOUT_S})",
  )
  parser.add_argument(
    "--join-timeout",
    type=_positive_seconds,
    default=JOIN_TIMEOUT_S,
    help=f"with --distributed: seconds to wait for every process to join at the start (default {JOIN_TIMEOUT_S})",
  )
  parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")
  return parser


def main(argv: list[str] | None = None) -> dict:
  args = build_parser().parse_intermixed_args(argv)  # overrides may sit between options
  workdir = args.workdir or os.path.join("runs", os.path.splitext(os.path.basename(args.config))[0])
  try:
    # Cheap checks first: no JAX yet. The data is read once, here.
    config = load_config(TrainConfig, args.config, args.overrides)
    task = tasks.build_task(
      config.task, seed=config.seed, batch_size=config.train.batch_size, highway=config.model.highway
    )
    if not args.distributed:  # in a multi-host run, process 0 checks the folder under its lock
      run_folder.check_writable(workdir)
      run_folder.check_not_busy(workdir)
  except (ConfigError, energy.DataError, FileNotFoundError, files.DiskFault, run_folder.RunFolderBusyError) as e:
    sys.exit(f"error: {e}")
  except ValueError as e:  # the task's own checks of the config (a batch larger than the training set)
    sys.exit(f"error: {args.config}: {e}")

  import jax  # pylint: disable=g-import-not-at-top

  from training import agreement  # pylint: disable=g-import-not-at-top
  from training import checkpoint  # pylint: disable=g-import-not-at-top
  from training import interrupts  # pylint: disable=g-import-not-at-top
  from training import metrics  # pylint: disable=g-import-not-at-top
  from training import train_log  # pylint: disable=g-import-not-at-top
  from training import trainer  # pylint: disable=g-import-not-at-top

  if args.distributed:
    # Unset values are detected on Cloud TPU, SLURM, Open MPI and Kubernetes clusters.
    jax.distributed.initialize(
      args.coordinator,
      args.num_processes,
      args.process_id,
      initialization_timeout=args.join_timeout,
      heartbeat_timeout_seconds=args.heartbeat_timeout,
    )
  try:
    summary = trainer.train_and_evaluate(config, workdir, restart=args.restart, task=task)
  except interrupts.Interrupted as e:  # Ctrl-C or SIGTERM: one line, the shell's exit status, no traceback
    print(e, file=sys.stderr, flush=True)
    sys.stdout.flush()
    # Every checkpoint is complete (saves hold signals back) and the OS releases the lock; an
    # interpreter shutdown in the middle of an XLA compilation can crash instead of exiting.
    os._exit(e.exit_status)
  except agreement.LostProcessError as e:
    # One line; then no interpreter shutdown: jax.distributed's shutdown barrier would wait for the
    # lost process and abort. The OS releases the lock; every checkpoint is complete.
    print(f"error: {e}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(1)
  except (
    ConfigError,
    energy.DataError,
    files.DiskFault,
    run_folder.RunFolderBusyError,
    checkpoint.CheckpointError,
    train_log.NonFiniteLossError,
    agreement.MainProcessError,
  ) as e:
    sys.exit(f"error: {e}")
  if jax.process_index() == 0:
    test = summary["test"]
    shown = {k: v for k, v in test.items() if not isinstance(v, list | dict)}  # per-lead lists: summary.json
    print(json.dumps({"workdir": workdir, "test": shown, "seconds_per_epoch": summary["seconds_per_epoch"]}, indent=2))
    if "baselines" in test:  # day-ahead: the quantile forecasts beside the seasonal naive ones and the ridge per lead
      print(dayahead_report.comparison_line(summary["model"], test))
    elif "smape" in test:  # energy: the network beside what a forecaster fits first and the naive forecasts
      print(metrics.comparison_line(summary["model"], test, fitted=baselines.KINDS, naive=tuple(energy.NAIVE_LAGS)))
  return summary


if __name__ == "__main__":
  try:
    main()
  except SystemExit as stop:
    if not isinstance(stop.code, str):
      raise
    # One line. A checkpoint writer stopped by a full disk leaves callbacks that print tracebacks
    # when the interpreter shuts down; nothing is left to clean up (the OS releases the lock).
    print(stop.code, file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(1)
