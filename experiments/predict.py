"""Forecasts load with a finished energy run and writes ``Datetime,actual,forecast`` as CSV.

    python experiments/predict.py --workdir runs/energy_default [--csv FILE] [--out FILE] [--force]
    python experiments/predict.py --workdir runs/energy_default --export onnx|stablehlo [--out FILE] [--force]

Without ``--csv`` it forecasts the run's own test part. This file is intentionally
kept short: the work happens in :mod:`training.inference`.
"""

from __future__ import annotations

import argparse
import os

from training import inference
from training import metrics


def main(argv: list[str] | None = None) -> inference.Forecast:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True, help="a finished energy run folder, e.g. runs/energy_default")
  parser.add_argument("--csv", help="hourly CSV file to forecast, in the run's columns (default: the run's test part)")
  parser.add_argument("--out", help="CSV file to write (default: WORKDIR/forecast.csv)")
  parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
  parser.add_argument("--export", choices=("onnx", "stablehlo"), help="instead of forecasting, write the forecaster "
                      "(load in MW in and out) to --out (default: WORKDIR/forecaster.onnx or .stablehlo)")
  args = parser.parse_args(argv)
  if args.export:  # the trained model as one file (training.export)
    from training import export  # pylint: disable=g-import-not-at-top
    if args.csv:
      parser.error("--csv names a file to forecast, --export writes the model: pass one of them")
    path = args.out or export.default_path(args.workdir, args.export)
    if os.path.exists(path) and not args.force:  # checked before the model is loaded
      parser.error(f"--out {path} already exists; choose another file or pass --force to overwrite it")
    try:
      export.export_forecaster(args.workdir, args.export, path=path, force=args.force)
    except (FileNotFoundError, IsADirectoryError) as error:  # --out, checked before the run is loaded
      parser.error(str(error))
    print(f"the {args.export} forecaster of {args.workdir} written to {path}")
    return path
  out = args.out or os.path.join(args.workdir, "forecast.csv")
  if os.path.exists(out) and not args.force:  # checked before the model is loaded
    parser.error(f"--out {out} already exists; choose another file or pass --force to overwrite it")
  result = inference.forecast(inference.load_run(args.workdir), args.csv)
  inference.write_csv(result, out, force=args.force)
  print(f"{len(result.forecast)} forecasts of {result.csv_path} written to {out}; "
        f"sMAPE {metrics.smape(result.forecast, result.actual):.2f}%")
  return result


if __name__ == "__main__":
  main()
