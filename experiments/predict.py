"""Forecasts load with a finished energy or day-ahead run and writes the forecasts as CSV.

    python experiments/predict.py --workdir runs/energy_default [--csv FILE] [--out FILE] [--force]
    python experiments/predict.py --workdir runs/energy_dayahead [--csv FILE] [--issue-time TIME] [--out FILE]
    python experiments/predict.py --workdir RUN --export onnx|stablehlo [--out FILE] [--force]

An energy run forecasts every hour of ``--csv`` (default: the run's own test part) and writes
``Datetime,actual,forecast``. A day-ahead run issues one forecast from the recent load in ``--csv``
(default: the run's first file), the latest its issue hour allows or at ``--issue-time``, and writes
``issue_time,target_time,lead,q0.1,q0.5,q0.9`` for the next day's hours. The arguments, the run
folder's files and the CSV file are checked before JAX loads; every problem
ends with one line (``error: ...``) and exit status 1, and nothing is written.
The forecast file is written whole or not at all. This file is intentionally
kept short: the work happens in :mod:`training.inference`.
"""

from __future__ import annotations

import argparse
import datetime
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
  parser.add_argument(
    "--issue-time",
    type=_timestamp,
    metavar="TIME",
    help="day-ahead runs: when the forecast is issued, e.g. '2014-12-01 00:00' at the run's task.issue_hour "
    "(default: the latest the CSV allows)",
  )
  parser.add_argument("--out", help="CSV file to write (default: WORKDIR/forecast.csv)")
  parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
  parser.add_argument(
    "--export",
    choices=("onnx", "stablehlo"),
    help="instead of forecasting, write the forecaster "
    "(load in MW in and out) to --out (default: WORKDIR/forecaster.onnx or .stablehlo)",
  )
  return parser


def _timestamp(text: str) -> datetime.datetime:
  try:
    return datetime.datetime.fromisoformat(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not a time; expected e.g. '2014-12-01 00:00'") from None


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
  if args.csv or args.issue_time:
    sys.exit("error: --csv and --issue-time choose what to forecast, --export writes the model: pass one of them")
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
    if run_files.config.task.kind == "dayahead":
      return forecast_day(args, run_files, out)
    if args.issue_time:
      sys.exit(f"error: --issue-time is for day-ahead runs; {args.workdir} forecasts every hour of --csv")
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


def forecast_day(args, run_files: inference.RunFiles, out: str):
  """A day-ahead run: one issue's quantiles of the next day (:mod:`training.dayahead_inference`)."""
  from training import dayahead_inference  # pylint: disable=g-import-not-at-top

  issue = dayahead_inference.read_issue(
    run_files,
    args.csv,
    issue_time=args.issue_time,
    value_column=args.value_column,
    datetime_column=args.datetime_column,
  )
  result = dayahead_inference.forecast(inference.load_run(run_files), issue)
  dayahead_inference.write_csv(result, out, force=args.force)
  print(
    f"day-ahead forecast issued at {result.issue_time} from {result.csv_path}, for "
    f"{str(result.target_times[0]).replace('T', ' ')} .. {str(result.target_times[-1]).replace('T', ' ')}, "
    f"written to {out}"
    + (f"; the file's {issue.unread_rows} rows after the issue time were not read" if issue.unread_rows else "")
  )
  return result


if __name__ == "__main__":
  main()
