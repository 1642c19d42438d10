"""Times jaxgru.GRU against Flax, PyTorch and Equinox GRUs; kept short on purpose.

  python experiments/benchmark.py --config configs/bench/cpu.yaml [key.sub=value ...]

Writes results.json, results.md, tokens_per_s.png and the resolved config.yaml
into a new folder of this run, ``runs/bench/<config>-<UTC time>/`` (or --out, new
or empty); --update-results writes into the config's ``results_dir`` instead, the
committed results, replacing them. A GPU config (``device: gpu``) stops at once
on a machine without a GPU unless --cpu-smoke asks for its small CPU sizes.
The logic lives in :mod:`benchmarking`.
"""

import argparse
import os
import shlex
import sys

# PyTorch's OpenMP workers spin on the cores for a while after each call, which
# slowed the JAX rows interleaved with them and, on a shared 2-core machine,
# torch itself by 30x (4.3 s against 0.17 s at 16x1024x32x64, forward+backward).
# Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import jax

import benchmarking
from training.config_files import ConfigError
from training.config_files import dump_config


def output_dir(config_path: str, config: benchmarking.BenchConfig, out: str | None, update_results: bool) -> str:
  """The folder this run writes into, created now (see the module docstring); raises OutputError."""
  if update_results:
    os.makedirs(config.results_dir, exist_ok=True)  # asked for: its files are replaced
    return config.results_dir
  if out is None:
    name = os.path.splitext(os.path.basename(config_path))[0]
    out = benchmarking.timestamped_dir(os.path.join("runs", "bench"), name)
  return benchmarking.claim_empty_dir(out)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", required=True, help="a YAML file under configs/bench/")
  parser.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. repeats=20 'shapes=[[8,64,16,32]]'")
  parser.add_argument("--note", default="", help="a line put at the top of results.md (e.g. 'shared, busy machine')")
  where = parser.add_mutually_exclusive_group()
  where.add_argument("--out", help="a new or empty folder for this run (default: runs/bench/<config>-<UTC time>)")
  where.add_argument(
    "--update-results",
    action="store_true",
    help="write into the config's results_dir (the committed results), replacing its files",
  )
  parser.add_argument(
    "--cpu-smoke",
    action="store_true",
    help="run a GPU config (device: gpu) on a machine without a GPU at its cpu_smoke_shapes",
  )
  args = parser.parse_args(argv)
  if args.cpu_smoke and args.update_results:
    print("error: --cpu-smoke sizes never replace the committed results; drop --update-results", file=sys.stderr)
    return 2
  try:
    config = benchmarking.load(args.config, args.overrides)
    config = benchmarking.for_this_machine(config, jax.default_backend(), cpu_smoke=args.cpu_smoke, name=args.config)
    directory = output_dir(args.config, config, args.out, args.update_results)  # before the run: fails now
  except (ConfigError, FileNotFoundError, benchmarking.DeviceError, benchmarking.OutputError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  report = benchmarking.run_benchmark(config)
  report.environment["command"] = shlex.join(
    ["python", "experiments/benchmark.py", *(argv if argv is not None else sys.argv[1:])]
  )
  if args.note:
    report.environment["note"] = args.note
  paths = benchmarking.write_all(report, directory)
  dump_config(config, os.path.join(directory, "config.yaml"))
  print(benchmarking.markdown_tables(report))
  print("wrote " + ", ".join(paths.values()), file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
