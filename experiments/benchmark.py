"""Times jaxgru.GRU against Flax, PyTorch and Equinox GRUs; kept short on purpose.

  python experiments/benchmark.py --config configs/bench/cpu.yaml [key.sub=value ...]

Writes results.json, results.md, tokens_per_s.png and the resolved config.yaml
to the config's ``output_dir``. The logic lives in :mod:`benchmarking`.
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

import benchmarking
from config_files import ConfigError, dump_config


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", required=True, help="a YAML file under configs/bench/")
  parser.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. repeats=20 'shapes=[[8,64,16,32]]'")
  parser.add_argument("--note", default="", help="a line put at the top of results.md (e.g. 'shared, busy machine')")
  args = parser.parse_args(argv)
  try:
    config = benchmarking.load(args.config, args.overrides)
  except (ConfigError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  os.makedirs(config.output_dir, exist_ok=True)  # fails now, not after the run, if it cannot be made
  report = benchmarking.run_benchmark(config)
  report.environment["command"] = shlex.join(["python", "experiments/benchmark.py", "--config", args.config,
                                              *args.overrides])
  if args.note:
    report.environment["note"] = args.note
  paths = benchmarking.write_all(report, config.output_dir)
  dump_config(config, os.path.join(config.output_dir, "config.yaml"))
  print(benchmarking.markdown_tables(report))
  print("wrote " + ", ".join(paths.values()), file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
