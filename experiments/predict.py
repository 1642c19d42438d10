"""Forecasts load with a finished energy run and writes ``Datetime,actual,forecast`` as CSV.

    python experiments/predict.py --workdir runs/energy_default [--csv FILE] [--out FILE] [--force]
    python experiments/predict.py --workdir runs/energy_default --export onnx|stablehlo [--out FILE] [--force]

Without ``--csv`` it forecasts the run's own test part. The arguments, the run
folder's files and the CSV file are checked before JAX loads; every problem
ends with one line (``error: ...``) and exit status 1, and nothing is written.
The forecast file is written whole or not at all. This file is intentionally
kept short: the work happens in :mod:`training.inference`.
"""

from __future__ import annotations

import argparse
import os
import sys

from training import energy
from training import files
from training import inference

# The failures a user can cause or fix; anything else is a bug and keeps its traceback.
USER_ERRORS = (inference.RunError, energy.DataError, files.DiskFault, FileExistsError)


def build_parser() -> argparse.ArgumentParser:
  """The command line; add options here."""
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True, help="a finished energy run folder, e.g. runs/energy_default")
  parser.add_argument("--csv", help="hourly CSV file to forecast, in the run's columns (default: the run's test part)")
  parser.add_argument("--value-column", metavar="NAME", help="the CSV's load column (default: the run's)")
  parser.add_argument("--datetime-column", metavar="NAME", help="the CSV's timestamp column (default: the run's)")
  parser.add_argument("--out", help="CSV file to write (default: WORKDIR/forecast.csv)")
  parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
  parser.add_argument(
    "--export",
    choices=("onnx", "stablehlo"),
    help="instead of forecasting, write the forecaster "
    "(load in MW in and out) to --out (default: WORKDIR/forecaster.onnx or .stablehlo)",
  )
  return parser


def check_out(out: str, force: bool, what: str = "forecast") -> None:
  """Refuses an ``--out`` that exists (without ``--force``) or whose folder cannot take it; cleans interrupted writes.

  Raises:
    FileExistsError, training.files.DiskFault: with the line to show.
  """
  folder = os.path.dirname(os.path.abspath(out))
  if not os.path.isdir(folder):
    raise FileExistsError(f"--out {out}: folder {folder} does not exist; create it or choose another --out")
  if os.path.isdir(out):
    raise FileExistsError(f"--out {out} is a folder; give a file name, e.g. {os.path.join(out, 'forecast.csv')}")
  if os.path.exists(out) and not force:
    # Complete: forecasts are renamed into place only when fully written.
    raise FileExistsError(
      f"--out {out} already exists (a complete {what}); choose another --out or pass --force to overwrite it"
    )
  files.check_writable(folder, (os.path.basename(out),) if force else ())
  for stale in files.leftovers(out):
    os.remove(stale)
    print(f"removed {stale}, left by an interrupted write of {out}", file=sys.stderr)


def export_model(args) -> str:
  """``--export``: writes the run's forecaster (:mod:`training.run_export`) and returns its path."""
  if args.csv:
    sys.exit("error: --csv names a file to forecast, --export writes the model: pass one of them")
  try:
    run_files = inference.read_run(args.workdir)  # cheap checks first: no JAX yet
    from training import run_export  # pylint: disable=g-import-not-at-top

    path = args.out or run_export.default_path(args.workdir, args.export)
    check_out(path, args.force, "model file")
    run_export.export_forecaster(run_files, args.export, path=path, force=args.force)
  except (*USER_ERRORS, ValueError) as e:  # ValueError: a format the run's model cannot take (an LSTM as ONNX)
    sys.exit(f"error: {e}")
  print(f"the {args.export} forecaster of {args.workdir} written to {path}")
  return path


def main(argv: list[str] | None = None) -> inference.Forecast | str:
  args = build_parser().parse_args(argv)
  if args.export:
    return export_model(args)
  out = args.out or os.path.join(args.workdir, "forecast.csv")
  try:
    # Cheap checks first: no JAX yet.
    run_files = inference.read_run(args.workdir)
    check_out(out, args.force)
    series = inference.read_series(
      run_files, args.csv, value_column=args.value_column, datetime_column=args.datetime_column
    )
    result = inference.forecast(inference.load_run(run_files), series)
    inference.write_csv(result, out, force=args.force)
  except USER_ERRORS as e:
    sys.exit(f"error: {e}")
  from training import metrics  # pylint: disable=g-import-not-at-top

  print(
    f"{len(result.forecast)} forecasts of {result.csv_path} written to {out}; "
    f"sMAPE {metrics.smape(result.forecast, result.actual):.2f}%"
  )
  return result


if __name__ == "__main__":
  main()
