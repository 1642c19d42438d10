"""Rolling-origin backtest of a day-ahead config: refit at ``--folds`` origins, so one lucky split carries no claim.

    python experiments/backtest_dayahead.py --config configs/energy_dayahead.yaml --folds 4 --days 91 \\
        --out experiments/results/energy_dayahead_backtest [key.sub=value ...]

Fold ``k`` (0 = the latest) tests the ``--days`` daily issues that end ``k * --days`` days before the end of
each file and trains on everything before them (``task.test_days``, ``task.holdout_days``): with 4 folds of 91
days, the last year. Runs go to ``<runs-dir>/<config name>_fold<k>`` and resume when rerun. Writes
``backtest.md`` and ``backtest.json`` to ``--out``: per fold and as mean and spread over the folds, the
network's and each baseline's median sMAPE, pinball loss and 80% coverage.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from training import files
from training.config_files import ConfigError
from training.config_files import load_config
from training.schema import TrainConfig

KEYS = ("smape", "pinball", "coverage_80")


def fold_overrides(folds: int, days: int) -> list[list[str]]:
  """The overrides of each fold, latest first."""
  if folds < 1 or days < 1:
    raise ValueError(f"--folds ({folds}) and --days ({days}) must be at least 1")
  return [[f"task.test_days={days}", f"task.holdout_days={k * days}"] for k in range(folds)]


def aggregate(summaries: list[dict]) -> dict:
  """``{model or baseline: {key: {"folds": [...], "mean": m, "std": s}}}`` over the folds' ``summary.json``."""
  rows = {"model": [s["test"] for s in summaries]}
  for name in summaries[0]["test"]["baselines"]:
    rows[name] = [s["test"]["baselines"][name] for s in summaries]
  out = {}
  for name, tests in rows.items():
    out[name] = {}
    for key in KEYS:
      values = [t[key] for t in tests if key in t]
      if len(values) == len(tests):
        out[name][key] = {"folds": values, "mean": float(np.mean(values)), "std": float(np.std(values))}
  return out


def markdown(table: dict, folds: int, days: int) -> str:
  """The backtest as a Markdown table: mean ± spread, then each fold (latest first)."""
  lines = [
    f"Rolling-origin backtest: {folds} folds of {days} daily issues, latest first.",
    "",
    "| forecast | " + " | ".join(KEYS) + " |",
    "|---|" + "---|" * len(KEYS),
  ]
  for name, scores in table.items():
    cells = [
      f"{s['mean']:.3f} ± {s['std']:.3f} ({', '.join(f'{v:.3f}' for v in s['folds'])})" if (s := scores.get(k)) else ""
      for k in KEYS
    ]
    lines.append(f"| {name.replace('_', ' ')} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", required=True, help="a day-ahead config (task.kind: dayahead)")
  parser.add_argument("--folds", type=int, default=4, help="origins refitted (default 4)")
  parser.add_argument("--days", type=int, default=91, help="test days of each fold (default 91: 4 folds = a year)")
  parser.add_argument("--runs-dir", default="runs", help="where the folds' run folders go (default runs)")
  parser.add_argument("--out", default="runs/dayahead_backtest", help="folder of backtest.md and backtest.json")
  parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides, for every fold")
  args = parser.parse_intermixed_args(argv)
  plans = fold_overrides(args.folds, args.days)
  try:  # every fold's config checked before the first trains
    configs = [load_config(TrainConfig, args.config, [*args.overrides, *extra]) for extra in plans]
  except ConfigError as e:
    parser.error(f"{e} (the backtest needs a day-ahead config, task.kind: dayahead)")
  from training import trainer  # pylint: disable=g-import-not-at-top  # JAX loads after the checks

  name = os.path.splitext(os.path.basename(args.config))[0]
  summaries = [
    trainer.train_and_evaluate(config, os.path.join(args.runs_dir, f"{name}_fold{k}"))
    for k, config in enumerate(configs)
  ]
  table = aggregate(summaries)
  os.makedirs(args.out, exist_ok=True)
  with files.atomic_write(os.path.join(args.out, "backtest.json")) as f:
    json.dump({"config": args.config, "folds": args.folds, "days": args.days, "scores": table}, f, indent=2)
  with files.atomic_write(os.path.join(args.out, "backtest.md")) as f:
    f.write(markdown(table, args.folds, args.days))
  print(markdown(table, args.folds, args.days))
  return table


if __name__ == "__main__":
  main()
