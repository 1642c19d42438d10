"""ONNX Runtime time per forecast: jaxgru's export of the forecaster against PyTorch's export of the same model.

    python experiments/measure.py onnx_timing [--out experiments/results/onnx] [--force]

For the forecaster at the default config's size (1 x 64, 48 h of 3 features) and at the
FloydHub post's (2 x 256, 90 h of 5 features), the same weights go two ways: jaxgru's
``training.run_export.forecaster_onnx`` and ``torch.onnx.export`` (TorchScript exporter) of a
``torch.nn.GRU`` forecaster with the weights of ``jaxgru.interop.to_torch``. Both files hold the
whole forecaster: scaling in, GRU, ReLU and Linear on the last step, unscaling out. Both run in
ONNX Runtime on the CPU with one thread, interleaved round by round; the script checks first that
they give the same forecasts. Writes ``onnx_runtime.json`` and ``onnx_runtime.md`` (wall and
process-CPU time per call and per forecast, medians). Weights are random: the time does not
depend on them.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

import jaxgru
from benchmarking import timing
from training import energy
from training import inference
from training import models
from training import run_export as forecaster_export
from training import scaling as scaling_lib

SIZES = {"default (1 x 64, T=48, I=3)": (1, 64, 48, 3), "post (2 x 256, T=90, I=5)": (2, 256, 90, 5)}
BATCHES = (1, 256)


def synthetic_run(num_layers: int, hidden: int, lookback: int, inputs: int) -> inference.Run:
  """A forecaster with random weights and scaling, in the shape of a finished energy run."""
  model = models.SequenceModel(kind="gru", hidden=hidden, num_layers=num_layers, outputs=1)
  params = model.init(jax.random.key(0), jnp.zeros((1, lookback, inputs)))["params"]
  rng = np.random.default_rng(0)
  scaling = scaling_lib.Scaling(
    ("synthetic.csv",),
    energy.FEATURES[:inputs],
    lookback,
    rng.uniform(0, 10, (1, inputs)),
    rng.uniform(1, 100, (1, inputs)),
  )
  return inference.Run("synthetic", model, {"params": params}, None, scaling, 0)


def torch_forecaster_onnx(run: inference.Run) -> bytes:
  """The same forecaster as a ``torch.nn.Module``, exported by PyTorch's TorchScript ONNX exporter."""
  import torch  # pylint: disable=g-import-not-at-top

  params = run.variables["params"]
  gru = jaxgru.GRU(run.model.hidden, num_layers=run.model.num_layers)
  state = jaxgru.interop.to_torch(gru, {"params": params["gru"]})
  low, span = (torch.tensor(a[0], dtype=torch.float32) for a in (run.scaling.feature_min, run.scaling.feature_range))

  class Forecaster(torch.nn.Module):
    def __init__(self):
      super().__init__()
      inputs = len(run.scaling.feature_names)
      self.gru = torch.nn.GRU(inputs, run.model.hidden, num_layers=run.model.num_layers, batch_first=True)
      self.gru.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
      self.head = torch.nn.Linear(run.model.hidden, 1)
      self.head.weight.data = torch.from_numpy(np.asarray(params["head"]["kernel"]).T.copy())
      self.head.bias.data = torch.from_numpy(np.asarray(params["head"]["bias"]).copy())

    def forward(self, features):
      hs, _ = self.gru((features - low) / span)
      return (self.head(torch.relu(hs[:, -1])) * span[0] + low[0]).reshape(-1)

  example = torch.zeros(2, run.scaling.lookback, len(run.scaling.feature_names))
  buffer = io.BytesIO()
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracing notes
    torch.onnx.export(
      Forecaster().eval(),
      (example,),
      buffer,
      input_names=["features"],
      output_names=["load"],
      dynamic_axes={"features": {0: "batch"}},
      opset_version=17,
      dynamo=False,
    )
  return buffer.getvalue()


def measure(sessions: dict, features: np.ndarray, repeats: int) -> dict:
  """Interleaved timing of ``session.run`` for each session: per call, wall and process CPU, in seconds."""
  calls = {
    name: (lambda session=session: session.run(None, {"features": features})) for name, session in sessions.items()
  }
  samples = timing.time_interleaved_with_cpu(calls, repeats=repeats, warmup=3)
  return {
    name: {"wall": timing.summarize(samples.wall[name])._asdict(), "cpu": timing.summarize(samples.cpu[name])._asdict()}
    for name in sessions
  }


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", default="experiments/results/onnx", help="folder of the results")
  parser.add_argument("--repeats", type=int, default=200, help="timed rounds at batch 1 (a tenth at batch 256)")
  parser.add_argument("--force", action="store_true", help="overwrite existing results")
  args = parser.parse_args(argv)
  paths = [os.path.join(args.out, name) for name in ("onnx_runtime.json", "onnx_runtime.md")]
  if any(os.path.exists(p) for p in paths) and not args.force:
    parser.error(f"{args.out} already holds results; pass --force to overwrite them")
  if args.repeats < 10:
    parser.error(f"--repeats must be at least 10, got {args.repeats}")
  import onnxruntime as ort  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top

  options = ort.SessionOptions()
  options.intra_op_num_threads = options.inter_op_num_threads = 1
  rows = []
  for size, shape in SIZES.items():
    run = synthetic_run(*shape)
    files = {"jaxgru": forecaster_export.forecaster_onnx(run).SerializeToString(), "torch": torch_forecaster_onnx(run)}
    sessions = {name: ort.InferenceSession(f, options, providers=["CPUExecutionProvider"]) for name, f in files.items()}
    for batch in BATCHES:
      low, span = run.scaling.feature_min[0], run.scaling.feature_range[0]
      scaled = np.random.default_rng(batch).uniform(0, 1, (batch, run.scaling.lookback, len(low)))
      features = (scaled * span + low).astype(np.float32)
      outputs = {name: s.run(None, {"features": features})[0] for name, s in sessions.items()}
      diff = float(np.max(np.abs(outputs["jaxgru"] - outputs["torch"])))
      scale = float(np.max(np.abs(outputs["torch"])))
      if diff > 1e-4 * max(scale, 1.0):
        raise SystemExit(f"{size}, batch {batch}: the two exports differ by {diff} (scale {scale}); not timing them")
      stats = measure(sessions, features, args.repeats if batch == 1 else max(args.repeats // 10, 10))
      for name, s in stats.items():
        rows.append(
          {
            "size": size,
            "batch": batch,
            "export": name,
            "max_abs_diff": diff,
            "bytes": len(files[name]),
            **{f"{k}_median_s": s[k]["median"] for k in s},
            **{f"{k}_q1_s": s[k]["q1"] for k in s},
            **{f"{k}_q3_s": s[k]["q3"] for k in s},
            "n": s["wall"]["n"],
          }
        )
      print(size, batch, {n: f"{s['wall']['median'] * 1e3:.3f} ms" for n, s in stats.items()}, flush=True)
  environment = {
    "onnxruntime": ort.__version__,
    "torch": torch.__version__,
    "jax": jax.__version__,
    "onnx_opset": forecaster_export.export.DEFAULT_OPSET,
    "processor": platform.processor() or platform.machine(),
    "cpus": os.cpu_count(),
    "threads": 1,
    "load_average": os.getloadavg(),
    "time_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
  }
  os.makedirs(args.out, exist_ok=True)
  with open(paths[0], "w", encoding="utf-8") as f:
    json.dump({"environment": environment, "rows": rows}, f, indent=2)
  lines = [
    "# ONNX Runtime: jaxgru's export against PyTorch's export of the same forecaster",
    "",
    f"`python experiments/measure.py onnx_timing`, {environment['time_utc']} UTC, ONNX Runtime {ort.__version__}, "
    f"torch {torch.__version__}, one ORT thread, CPU execution provider; load average at the end "
    f"{', '.join(f'{x:.1f}' for x in environment['load_average'])} on {environment['cpus']} cores "
    "(a shared, contended machine: compare the two columns of one row, measured interleaved, not "
    "times across rows or runs). Medians; per forecast = per call / batch.",
    "",
    "| size | batch | jaxgru ms/call (wall) | torch ms/call (wall) | jaxgru us/forecast (CPU) | torch us/forecast (CPU) | jaxgru / torch (CPU) |",
    "|---|---|---|---|---|---|---|",
  ]
  for size in SIZES:
    for batch in BATCHES:
      ours, theirs = (
        [r for r in rows if r["size"] == size and r["batch"] == batch and r["export"] == e][0]
        for e in ("jaxgru", "torch")
      )
      lines.append(
        f"| {size} | {batch} | {ours['wall_median_s'] * 1e3:.3f} | {theirs['wall_median_s'] * 1e3:.3f} | "
        f"{ours['cpu_median_s'] / batch * 1e6:.1f} | {theirs['cpu_median_s'] / batch * 1e6:.1f} | "
        f"{ours['cpu_median_s'] / theirs['cpu_median_s']:.2f} |"
      )
  with open(paths[1], "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  main()
