"""GRU vs LSTM on the FloydHub GRU post's energy task, side by side: sMAPE, MAE, baselines, time, parameters, a plot.

Compare finished runs:

    python experiments/compare_energy.py --runs runs/energy_gru runs/energy_lstm

or train the post-size configs first (overrides apply to both; reruns resume):

    python experiments/compare_energy.py --train --out experiments/results/energy_post_size

or train one config as each model kind with several seeds, to see whether the difference is larger than the noise:

    python experiments/compare_energy.py --train --configs configs/energy_default.yaml --models gru lstm \\
        --seeds 0 1 2 --out experiments/results/energy_default_seeds

or the same on another file (the overrides apply to every run; --runs-dir keeps its runs apart):

    python experiments/compare_energy.py --train --configs configs/energy_default.yaml --models gru lstm \\
        --seeds 0 1 2 --runs-dir runs/england_wales --out experiments/results/energy_england_wales \\
        'task.csv_files=[data/EWD_hourly.csv]'

Runs go to <runs-dir, default runs>/<config name>[_<model>][_seed<seed>]. Writes comparison.md, comparison.json and
comparison.png to --out (default runs/energy_comparison).
"""

from __future__ import annotations

import argparse
import os

from training.compare import compare
from training.compare import markdown
from training.config_files import load_config
from training.schema import TrainConfig
from training.trainer import train_and_evaluate

CONFIGS = ("configs/energy_gru.yaml", "configs/energy_lstm.yaml")


def planned_runs(
  configs: list[str], models: list[str] | None, seeds: list[int] | None, runs_dir: str = "runs"
) -> list[tuple[str, str, list[str]]]:
  """``(config file, run folder under runs_dir, extra overrides)`` of each run that ``--train`` trains, in order."""
  runs = []
  for path in configs:
    name = os.path.splitext(os.path.basename(path))[0]
    for model in models or [None]:
      for seed in seeds or [None]:
        suffix = (f"_{model}" if model else "") + (f"_seed{seed}" if seed is not None else "")
        extra = ([f"model.kind={model}"] if model else []) + ([f"seed={seed}"] if seed is not None else [])
        runs.append((path, os.path.join(runs_dir, name + suffix), extra))
  return runs


def main(argv: list[str] | None = None) -> list[dict]:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--runs", nargs="+", help="finished run folders to compare")
  parser.add_argument("--train", action="store_true", help="train (or resume) the configs first")
  parser.add_argument("--configs", nargs="+", default=CONFIGS, help="the configs trained by --train")
  parser.add_argument(
    "--models", nargs="+", choices=("gru", "lstm"), help="with --train: train each config as each model kind"
  )
  parser.add_argument("--seeds", nargs="+", type=int, help="with --train: train each config with each seed")
  parser.add_argument(
    "--runs-dir", default="runs", help="with --train: where the run folders go (one per config, model, seed)"
  )
  parser.add_argument("--out", default=os.path.join("runs", "energy_comparison"), help="where the report goes")
  parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="overrides for every config (with --train)")
  args = parser.parse_intermixed_args(argv)  # overrides may sit between options
  if bool(args.runs) == args.train:
    parser.error("give either --runs DIR DIR ... or --train")
  workdirs = args.runs
  if args.train:
    plan = planned_runs(args.configs, args.models, args.seeds, args.runs_dir)
    configs = [
      load_config(TrainConfig, path, [*args.overrides, *extra]) for path, _, extra in plan
    ]  # all checked first
    workdirs = [workdir for _, workdir, _ in plan]
    for config, workdir in zip(configs, workdirs):
      train_and_evaluate(config, workdir)
  rows = compare(workdirs, args.out)
  print(markdown(rows))
  print(f"\nreport and forecast plot in {args.out}/")
  return rows


if __name__ == "__main__":
  main()
