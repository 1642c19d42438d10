"""The one prepared command for a GPU: correctness, timings and the post's experiment; kept short on purpose.

  python experiments/gpu_check.py --out DIR            # on a GPU: about 8 minutes, at most 8 files in DIR
  python experiments/gpu_check.py --smoke --out DIR    # anywhere: tiny sizes, one seed, seconds

DIR must be new or empty. Without a GPU, only --smoke runs. What it measures and how to
carry it to a GPU machine: experiments/gpu_check.md. The logic lives in
:mod:`benchmarking.gpu_session`, the run plans in :mod:`benchmarking.gpu_plans`.
"""

import argparse
import os
import sys

# Before JAX and torch are imported: the two frameworks share the GPU, so JAX must not take
# 75% of its memory up front; PyTorch's idle OpenMP workers must not spin (benchmark.py).
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import jax

from benchmarking import gpu_plans
from benchmarking import gpu_session
from benchmarking.output import OutputError
from benchmarking.output import claim_empty_dir


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", required=True, help="a new or empty folder for the files")
  parser.add_argument("--smoke", action="store_true", help="tiny sizes and one seed: checks every code path in seconds")
  parser.add_argument(
    "--budget",
    type=float,
    default=None,
    help="seconds the parts may take in all (default 450 on a GPU, 120 with --smoke)",
  )
  parser.add_argument(
    "--parts",
    nargs="+",
    choices=gpu_session.PARTS,
    default=list(gpu_session.PARTS),
    help="run only these parts (e.g. a rerun of one that failed)",
  )
  args = parser.parse_args(argv)
  backend = jax.default_backend()
  if not args.smoke and backend != "gpu":
    print(
      f"error: gpu_check needs a GPU and JAX sees none (backend {backend!r}); "
      "run it here with --smoke (tiny sizes, seconds)",
      file=sys.stderr,
    )
    return 2
  if args.budget is not None and not args.budget > 0:
    print(f"error: --budget must be a positive number of seconds, got {args.budget}", file=sys.stderr)
    return 2
  try:
    out = claim_empty_dir(args.out)
  except OutputError as e:
    print(f"error: --out: {e}", file=sys.stderr)
    return 2
  make = gpu_plans.smoke_plan if args.smoke else gpu_plans.full_plan
  plan = make() if args.budget is None else make(args.budget)
  command = ["python", "experiments/gpu_check.py", *(sys.argv[1:] if argv is None else argv)]
  state = gpu_session.run(plan, out, command=command, parts=args.parts)
  with open(os.path.join(out, gpu_session.FILES["report"]), encoding="utf-8") as f:
    print(f.read())
  return 1 if state["errors"] else 0


if __name__ == "__main__":
  sys.exit(main())
