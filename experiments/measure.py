"""Runs one of the measurements beside the benchmark; their code is in benchmarking/, their results in results/.

    python experiments/measure.py layer_options [--out PREFIX]   # remat memory, bfloat16 error, minGRU speed
    python experiments/measure.py speed_probe [--shapes BxTxIxH,...] [--impls ...]  # a quick interleaved probe
    python experiments/measure.py pallas_roofline               # the Pallas kernel's GPU floors (computed)
    python experiments/measure.py onnx_timing [--out DIR]       # ONNX Runtime: jaxgru's export against torch's

``python experiments/measure.py NAME --help`` lists a measurement's options.
Every timing goes through :func:`benchmarking.timing.time_interleaved`.
"""

from __future__ import annotations

import importlib
import sys

MEASUREMENTS = {  # name: the module whose main(argv) runs it
  "layer_options": "benchmarking.layer_options",
  "speed_probe": "benchmarking.speed_probe",
  "pallas_roofline": "benchmarking.pallas_roofline",
  "onnx_timing": "benchmarking.onnx_timing",
}


def main(argv: list[str] | None = None) -> None:
  argv = sys.argv[1:] if argv is None else list(argv)
  if not argv or argv[0] in ("-h", "--help"):
    print(__doc__)
    return
  if argv[0] not in MEASUREMENTS:
    sys.exit(f"error: measurement must be one of {', '.join(MEASUREMENTS)}; got {argv[0]!r}")
  importlib.import_module(MEASUREMENTS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
  main()
