#!/usr/bin/env bash
# Builds EWD_hourly.csv: real hourly electricity demand of England and Wales (the National Grid's
# transmission system), Monday 2000-06-05 00:00 .. Sunday 2000-08-27 23:00 (2,016 hours, 12 weeks,
# no gaps), in the Kaggle "Hourly Energy Consumption" layout (Datetime,EWD_MW): another grid, another
# year and another season than PTELD_hourly.csv, to check that a config carries over.
#
# Source: the half-hourly series of J. W. Taylor (2003), "Short-term electricity demand forecasting
# using double seasonal exponential smoothing", Journal of the Operational Research Society 54,
# 799-805, kindly provided by J. W. Taylor; published as the `taylor` data set of the R package
# forecast (GPL-3) and shipped as the array in pmdarima/datasets/taylor.py of the pmdarima 2.1.1
# wheel (MIT licence). 4,032 half-hours in MW. No licence for the data itself is stated, so the file
# is built here, not shipped; the tests that use it are skipped when it is absent.
#
# EWD_MW = the mean of the two half-hours of each hour (the hour's mean demand in MW). The whole
# span lies inside British Summer Time, so there is no daylight-saving change; timestamps are local.
#
# Usage: bash make_england_wales_data.sh [OUT_DIR]   (needs python3 and pip access to PyPI; ~10 s;
# pmdarima is not installed, its wheel is only read)
# Expected sha256 of the result: 3aeb050121f0323929e374c8b655a1b96f8267ea1946faafc2bed111463e3883
set -euo pipefail
OUT="${1:-.}"
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
python3 -m pip download -q --no-deps --only-binary :all: --python-version 3.11 --platform manylinux2014_x86_64 \
  -d "$W" "pmdarima==2.1.1"
python3 -m zipfile -e "$W"/pmdarima-2.1.1-*.whl "$W/pm" >/dev/null
python3 - "$W/pm/pmdarima/datasets/taylor.py" "$OUT/EWD_hourly.csv" <<'PY'
import ast, sys
from datetime import datetime, timedelta
src, dst = sys.argv[1], sys.argv[2]
# The data is the one list literal of load_taylor(): read it without importing pmdarima.
lists = [node for node in ast.walk(ast.parse(open(src).read())) if isinstance(node, ast.List) and len(node.elts) > 1000]
half_hours = ast.literal_eval(lists[0])
assert len(lists) == 1 and len(half_hours) == 4032 and half_hours[:2] == [22262, 21756], "unexpected taylor.py"
start = datetime(2000, 6, 5)
with open(dst, "w", newline="") as f:
    f.write("Datetime,EWD_MW\n")
    for h in range(len(half_hours) // 2):
        f.write(f"{(start + timedelta(hours=h)):%Y-%m-%d %H:%M:%S},{(half_hours[2 * h] + half_hours[2 * h + 1]) / 2:g}\n")
print(f"wrote {dst}: {len(half_hours) // 2} hours")
PY
sha256sum "$OUT/EWD_hourly.csv"
