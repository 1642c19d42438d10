"""GRU vs LSTM on the FloydHub GRU post's energy task, side by side: sMAPE, MAE, time per epoch, parameters, a plot.

Compare two finished runs:

    python experiments/compare_energy.py --runs runs/energy_gru runs/energy_lstm

or train both configs first (overrides apply to both; reruns resume):

    python experiments/compare_energy.py --train task.csv_files='[/data/kaggle/*_hourly.csv]'

Writes comparison.md, comparison.json and comparison.png to --out (default runs/energy_comparison).
"""

from __future__ import annotations

import argparse
import os

from config_files import load_config
from training.compare import compare
from training.compare import markdown
from training.schema import TrainConfig
from training.trainer import train_and_evaluate

CONFIGS = ("configs/energy_gru.yaml", "configs/energy_lstm.yaml")


def main(argv: list[str] | None = None) -> list[dict]:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--runs", nargs="+", help="finished run folders to compare")
  parser.add_argument("--train", action="store_true", help="train (or resume) both configs first")
  parser.add_argument("--configs", nargs=2, default=CONFIGS, help="the two configs trained by --train")
  parser.add_argument("--out", default=os.path.join("runs", "energy_comparison"), help="where the report goes")
  parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="overrides for both configs (with --train)")
  args = parser.parse_intermixed_args(argv)  # overrides may sit between options
  if bool(args.runs) == args.train:
    parser.error("give either --runs DIR DIR ... or --train")
  workdirs = args.runs
  if args.train:
    configs = [load_config(TrainConfig, path, args.overrides) for path in args.configs]  # all checked before training
    workdirs = [os.path.join("runs", os.path.splitext(os.path.basename(p))[0]) for p in args.configs]
    for config, workdir in zip(configs, workdirs):
      train_and_evaluate(config, workdir)
  rows = compare(workdirs, args.out)
  print(markdown(rows))
  print(f"\nreport and forecast plot in {args.out}/")
  return rows


if __name__ == "__main__":
  main()
