"""Measures the layer options: remat memory and time, bfloat16 error, minGRU speed.

Run from the repository root (about 2 minutes on 2 CPU cores):

  python experiments/measure.py layer_options

Writes ``experiments/results/layer_options.md`` and ``layer_options.json`` (``--out``
changes the path prefix). What it measures, all with random weights:

* remat: for ``jaxgru.GRU(remat=...)`` at T=4096, the temporary memory of the
  compiled gradient function (``compiled.memory_analysis().temp_size_in_bytes``),
  the median fwd+bwd time, and the largest gradient difference to ``remat="none"``;
* bfloat16: relative error (``||y_bf16 - y_f32|| / ||y_f32||``) of GRU and
  minGRU outputs with ``dtype=jnp.bfloat16`` against float32 (default
  initialisation), and whether a T=10,000 run with large random weights and
  inputs stays finite;
* minGRU: forward and fwd+bwd median times of the parallel, log-space and
  sequential modes against ``jaxgru.GRU`` at T in {512, 4096}.

Timings are interleaved (every variant once per round) and report the median;
absolute times drift between runs on shared machines, ratios within a run are
what to compare.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import jaxgru
from benchmarking import timing


def _random_variables(module, x, key: int, scale: float = 0.5):
  """``module.init`` with every parameter (biases too) redrawn from N(0, scale^2)."""
  variables = module.init(jax.random.key(key), x)
  leaves, treedef = jax.tree_util.tree_flatten(variables)
  keys = jax.random.split(jax.random.key(key + 1), len(leaves))
  return jax.tree_util.tree_unflatten(
    treedef, [scale * jax.random.normal(k, leaf.shape, leaf.dtype) for k, leaf in zip(keys, leaves)]
  )


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
  """Median wall time in ms of each (already compiled) thunk: one warm-up round, then ``repeats`` interleaved."""
  calls = {name: (lambda fn=fn: jax.block_until_ready(fn())) for name, fn in fns.items()}
  times = timing.time_interleaved(calls, repeats=repeats, warmup=1)
  return {name: statistics.median(values) * 1e3 for name, values in times.items()}


def _grad_fn(module, variables, x):
  """Compiled gradient of sum(outputs) w.r.t. all parameters and the inputs."""

  def loss(variables, x):
    return jnp.sum(module.apply(variables, x)[0])

  return jax.jit(jax.grad(loss, argnums=(0, 1))).lower(variables, x).compile()


def measure_remat(batch: int, steps: int, inputs: int, features: int, repeats: int) -> dict:
  """Temporary memory, time and gradient agreement of each remat mode."""
  x = jax.random.normal(jax.random.key(0), (batch, steps, inputs))
  base = jaxgru.GRU(features=features)
  # The layer's own initialisation (orthogonal recurrent kernel): large random
  # recurrent weights make a 4096-step gradient overflow.
  variables = base.init(jax.random.key(1), x)
  # The segment length remat="segments" picks by default: the largest divisor of T not above sqrt(T).
  segment = max(d for d in range(1, steps + 1) if steps % d == 0 and d * d <= steps)
  settings = {"none": {}, "step": {"remat": "step"}, "segments": {"remat": "segments", "remat_segment": segment}}
  compiled, rows = {}, {}
  for name, kwargs in settings.items():
    compiled[name] = _grad_fn(jaxgru.GRU(features=features, **kwargs), variables, x)
    rows[name] = {"temp_bytes": int(compiled[name].memory_analysis().temp_size_in_bytes)}
  times = interleaved_medians({name: (lambda c=c: c(variables, x)) for name, c in compiled.items()}, repeats)
  reference = jax.tree_util.tree_leaves(compiled["none"](variables, x))
  for name, row in rows.items():
    grads = jax.tree_util.tree_leaves(compiled[name](variables, x))
    row["fwd_bwd_ms"] = times[name]
    row["memory_reduction"] = rows["none"]["temp_bytes"] / row["temp_bytes"]
    row["time_ratio"] = times[name] / times["none"]
    row["max_abs_grad_diff"] = max(float(jnp.max(jnp.abs(g - r))) for g, r in zip(grads, reference))
    row["max_rel_grad_diff"] = max(
      float(jnp.max(jnp.abs(g - r)) / jnp.max(jnp.abs(r))) for g, r in zip(grads, reference)
    )
  return {"shape": dict(B=batch, T=steps, I=inputs, H=features), "segment": segment, "rows": rows}


def _relative_error(got, want) -> float:
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def measure_bfloat16(batch: int, steps: int, inputs: int, features: int, long_steps: int) -> dict:
  """bfloat16-compute error against float32, and finiteness over ``long_steps``."""
  x = jax.random.normal(jax.random.key(2), (batch, steps, inputs))
  modules = {
    "GRU reset_after": lambda **kw: jaxgru.GRU(features=features, num_layers=2, **kw),
    "GRU reset_before": lambda **kw: jaxgru.GRU(features=features, num_layers=2, variant="reset_before", **kw),
    "MinGRU parallel": lambda **kw: jaxgru.MinGRU(features=features, num_layers=2, **kw),
    "MinGRU log": lambda **kw: jaxgru.MinGRU(features=features, num_layers=2, mode="log", candidate="g", **kw),
  }
  errors = {}
  for name, make in modules.items():
    # The layers' own initialisation: with large random recurrent weights a GRU
    # is chaotic and any rounding, bfloat16 or not, changes the trajectory.
    variables = make().init(jax.random.key(3), x)
    y32, h32 = jax.jit(make().apply)(variables, x)
    y16, h16 = jax.jit(make(dtype=jnp.bfloat16).apply)(variables, x)
    errors[name] = {
      "output_rel_error": _relative_error(y16, y32),
      "output_max_abs_error": float(jnp.max(jnp.abs(y16 - y32))),
      "final_state_rel_error": _relative_error(h16, h32),
      "output_dtype": str(y16.dtype),
    }
  # Long run: larger weights and inputs than usual to provoke saturation.
  x_long = 3.0 * jax.random.normal(jax.random.key(4), (2, long_steps, inputs))
  long = {}
  for name, make in modules.items():
    module = make(dtype=jnp.bfloat16)
    variables = _random_variables(module, x_long, key=5, scale=2.0)
    y, h = jax.jit(module.apply)(variables, x_long)
    long[name] = {
      "finite": bool(jnp.all(jnp.isfinite(y)) and jnp.all(jnp.isfinite(h))),
      "max_abs_output": float(jnp.max(jnp.abs(y))),
    }
  return {
    "shape": dict(B=batch, T=steps, I=inputs, H=features, L=2),
    "errors": errors,
    "long": {"T": long_steps, "B": 2, "weight_scale": 2.0, "input_scale": 3.0, "runs": long},
  }


def measure_mingru_speed(batch: int, inputs: int, features: int, steps_list, repeats: int) -> dict:
  """Forward and fwd+bwd medians of minGRU modes against jaxgru.GRU."""
  results = {}
  for steps in steps_list:
    x = jax.random.normal(jax.random.key(6), (batch, steps, inputs))
    modules = {
      "MinGRU parallel": jaxgru.MinGRU(features=features),
      "MinGRU log": jaxgru.MinGRU(features=features, mode="log", candidate="g"),
      "MinGRU sequential": jaxgru.MinGRU(features=features, mode="sequential"),
      "GRU": jaxgru.GRU(features=features),
    }
    forward, backward = {}, {}
    for name, module in modules.items():
      variables = _random_variables(module, x, key=7)
      fwd = jax.jit(module.apply).lower(variables, x).compile()
      grad = _grad_fn(module, variables, x)
      forward[name] = lambda f=fwd, v=variables, x=x: f(v, x)
      backward[name] = lambda g=grad, v=variables, x=x: g(v, x)
    fwd_ms = interleaved_medians(forward, repeats)
    bwd_ms = interleaved_medians(backward, repeats)
    results[str(steps)] = {name: {"forward_ms": fwd_ms[name], "fwd_bwd_ms": bwd_ms[name]} for name in modules}
  return {"shape": dict(B=batch, I=inputs, H=features), "by_T": results}


def _environment() -> dict:
  device = jax.devices()[0]
  return {
    "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
    "jax": jax.__version__,
    "backend": jax.default_backend(),
    "device": getattr(device, "device_kind", str(device)),
    "cpu_count": os.cpu_count(),
    "machine": platform.machine(),
  }


def to_markdown(results: dict) -> str:
  """The results as the Markdown report kept in ``experiments/results``."""
  env, remat, bf16, speed = results["environment"], results["remat"], results["bfloat16"], results["mingru_speed"]
  s = remat["shape"]
  lines = [
    "# Layer options: remat memory, bfloat16 error, minGRU speed",
    "",
    f"Measured {env['date_utc']} UTC by `python experiments/measure.py layer_options` on {env['backend']} "
    f"({env['device']}, {env['cpu_count']} CPU cores), jax {env['jax']}. Timings are interleaved "
    "medians; absolute times drift between runs on shared machines, ratios within a run are what to compare.",
    "",
    f"## Remat (`jaxgru.GRU(remat=...)`), B={s['B']} T={s['T']} I={s['I']} H={s['H']}",
    "",
    "Default initialisation. Gradient of sum(outputs) w.r.t. all parameters and the inputs; temporary memory from "
    "`jax.jit(...).lower(...).compile().memory_analysis().temp_size_in_bytes`. "
    f"`segments` used the automatic segment length {remat['segment']}.",
    "",
    "| remat | temp memory (MB) | less memory | fwd+bwd (ms) | time ratio | max abs grad diff | max rel grad diff |",
    "|---|---|---|---|---|---|---|",
  ]
  for name, row in remat["rows"].items():
    lines.append(
      f"| {name} | {row['temp_bytes'] / 1e6:.1f} | {row['memory_reduction']:.1f}x | {row['fwd_bwd_ms']:.1f} | "
      f"{row['time_ratio']:.2f}x | {row['max_abs_grad_diff']:.1e} | {row['max_rel_grad_diff']:.1e} |"
    )
  b = bf16["shape"]
  lines += [
    "",
    f"## bfloat16 compute (`dtype=jnp.bfloat16`, float32 parameters and carry), "
    f"B={b['B']} T={b['T']} I={b['I']} H={b['H']} L={b['L']}",
    "",
    "Default initialisation. Relative error = ||y_bf16 - y_f32|| / ||y_f32|| over all outputs.",
    "",
    "| layer | output rel. error | output max abs error | final state rel. error | output dtype |",
    "|---|---|---|---|---|",
  ]
  for name, row in bf16["errors"].items():
    lines.append(
      f"| {name} | {row['output_rel_error']:.2e} | {row['output_max_abs_error']:.2e} | "
      f"{row['final_state_rel_error']:.2e} | {row['output_dtype']} |"
    )
  long = bf16["long"]
  lines += [
    "",
    f"T={long['T']:,} in bfloat16 (B={long['B']}, weights ~ N(0, {long['weight_scale']}^2), "
    f"inputs ~ N(0, {long['input_scale']}^2)):",
    "",
    "| layer | all outputs finite | max abs output |",
    "|---|---|---|",
  ]
  for name, row in long["runs"].items():
    lines.append(f"| {name} | {row['finite']} | {row['max_abs_output']:.3g} |")
  m = speed["shape"]
  lines += [
    "",
    f"## minGRU against GRU, B={m['B']} I={m['I']} H={m['H']} (one layer)",
    "",
    "| T | layer | forward (ms) | fwd+bwd (ms) | fwd+bwd vs GRU |",
    "|---|---|---|---|---|",
  ]
  for steps, rows in speed["by_T"].items():
    gru = rows["GRU"]["fwd_bwd_ms"]
    for name, row in rows.items():
      lines.append(
        f"| {steps} | {name} | {row['forward_ms']:.2f} | {row['fwd_bwd_ms']:.2f} | {row['fwd_bwd_ms'] / gru:.2f}x |"
      )
  return "\n".join(lines) + "\n"


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="experiments/results/layer_options", help="path prefix of the .md/.json")
  parser.add_argument("--repeats", type=int, default=7, help="timing rounds per variant")
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--inputs", type=int, default=32)
  parser.add_argument("--features", type=int, default=64)
  parser.add_argument("--render", action="store_true", help="only rewrite the .md from the existing .json")
  args = parser.parse_args(argv)
  if args.repeats < 1 or min(args.batch, args.inputs, args.features) < 1:
    parser.error("--repeats, --batch, --inputs and --features must be positive")
  out = pathlib.Path(args.out)
  if args.render:
    out.with_suffix(".md").write_text(to_markdown(json.loads(out.with_suffix(".json").read_text())))
    return
  results = {"environment": _environment()}
  print("remat ...", flush=True)
  results["remat"] = measure_remat(args.batch, 4096, args.inputs, args.features, args.repeats)
  print("bfloat16 ...", flush=True)
  results["bfloat16"] = measure_bfloat16(args.batch, 512, args.inputs, args.features, long_steps=10_000)
  print("minGRU speed ...", flush=True)
  results["mingru_speed"] = measure_mingru_speed(args.batch, args.inputs, args.features, (512, 4096), args.repeats)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
  out.with_suffix(".md").write_text(to_markdown(results))
  print(to_markdown(results))


if __name__ == "__main__":
  main()
