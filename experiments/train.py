"""Trains a model from a YAML config; rerunning the same command resumes the run.

    python experiments/train.py --config configs/energy_default.yaml [key.sub=value ...] [--workdir runs/x]

This file is intentionally kept short: the work happens in
:func:`training.trainer.train_and_evaluate`.
"""

from __future__ import annotations

import argparse
import json
import os

import jax

from config_files import load_config
from training.metrics import best_baseline
from training.schema import TrainConfig
from training.trainer import train_and_evaluate


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", required=True, help="YAML config file, e.g. configs/energy_default.yaml")
  parser.add_argument("--workdir", help="run folder (default: runs/<config name>); rerun to resume")
  parser.add_argument(
      "--distributed",
      action="store_true",
      help="call jax.distributed.initialize() first (one process per host; see README)",
  )
  parser.add_argument("--coordinator", help="with --distributed: host:port of process 0 (else auto-detected)")
  parser.add_argument("--num-processes", type=int, help="with --distributed: number of processes (else auto-detected)")
  parser.add_argument("--process-id", type=int, help="with --distributed: this process's index (else auto-detected)")
  parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")
  args = parser.parse_intermixed_args(argv)  # overrides may sit between options
  if args.distributed:
    # Unset values are detected on Cloud TPU, SLURM, Open MPI and Kubernetes clusters.
    jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)
  config = load_config(TrainConfig, args.config, args.overrides)
  workdir = args.workdir or os.path.join("runs", os.path.splitext(os.path.basename(args.config))[0])
  summary = train_and_evaluate(config, workdir)
  if jax.process_index() == 0:
    print(json.dumps({"workdir": workdir, "test": summary["test"], "seconds_per_epoch": summary["seconds_per_epoch"]}, indent=2))
    test = summary["test"]
    best = best_baseline(test) if "smape" in test else None
    if best:
      print(f"{summary['model'].upper()} test sMAPE {test['smape']:.2f}% vs best naive ({best[0].replace('_', ' ')}) {best[1]:.2f}%")
  return summary


if __name__ == "__main__":
  main()
