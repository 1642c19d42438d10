"""Interleaved CPU timing of GRU recurrence implementations (a quick probe, not the benchmark).

Usage (from the repository root)::

  python experiments/measure.py speed_probe --shapes 32x128x64x128 --impls flax,scan,custom_vjp,torch

Times, for each shape ``BxTxIxH``, the jitted forward and forward+backward (gradients of
``sum(outputs)`` w.r.t. inputs and all weights) of each implementation, interleaved round by
round so that machine drift hits all alike (:func:`benchmarking.timing.time_interleaved_with_cpu`); prints median wall and process-CPU ms, first-call
(compile) seconds, and ratios to flax and torch. On a machine shared with other jobs the
process-CPU ratios are the steadier figure (they do not count time spent descheduled).
"""

from __future__ import annotations

import argparse
import statistics

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import jaxgru
from benchmarking import timing


def _jax_fns(module, x):
  variables = module.init(jax.random.key(0), x)

  def fwd(v, x):
    out = module.apply(v, x)
    return out[0] if isinstance(out, tuple) else out

  def loss(v, x):
    return fwd(v, x).sum()

  return variables, jax.jit(fwd), jax.jit(jax.grad(loss, argnums=(0, 1)))


def build(name, batch, steps, inputs, hidden):
  """Returns {mode: (callable with no args that blocks, compile seconds)}."""
  x_np = np.random.default_rng(0).standard_normal((batch, steps, inputs), dtype=np.float32)
  if name == "torch":
    import torch

    gru = torch.nn.GRU(inputs, hidden, batch_first=True)
    xt = torch.from_numpy(x_np)

    def fwd():
      with torch.no_grad():
        gru(xt)

    def fwdbwd():
      xg = xt.clone().requires_grad_(True)
      gru.zero_grad()
      gru(xg)[0].sum().backward()

    return {"fwd": (fwd, float("nan")), "fwdbwd": (fwdbwd, float("nan"))}
  if name == "flax":
    module = nn.RNN(nn.GRUCell(hidden))
  else:
    module = jaxgru.GRU(hidden, implementation=name)
  x = jnp.asarray(x_np)
  variables, fwd, grad = _jax_fns(module, x)
  out = {}
  for mode, fn in (("fwd", fwd), ("fwdbwd", grad)):
    call = lambda fn=fn: jax.block_until_ready(fn(variables, x))  # noqa: E731
    out[mode] = (call, timing.time_call(call)[0])  # the first call compiles
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--shapes", default="32x128x64x128,16x1024x32x64,64x512x128x256,256x64x256x512")
  parser.add_argument("--impls", default="flax,scan,custom_vjp,torch")
  parser.add_argument("--modes", default="fwd,fwdbwd")
  parser.add_argument("--rounds", type=int, default=11)
  args = parser.parse_args(argv)
  impls = args.impls.split(",")
  for shape in args.shapes.split(","):
    dims = tuple(int(d) for d in shape.split("x"))
    fns = {name: build(name, *dims) for name in impls}
    for mode in args.modes.split(","):
      samples = timing.time_interleaved_with_cpu(
        {name: fns[name][mode][0] for name in impls}, repeats=args.rounds, warmup=1
      )
      med = {name: statistics.median(t) * 1e3 for name, t in samples.wall.items()}
      cpu_med = {name: statistics.median(t) * 1e3 for name, t in samples.cpu.items()}
      print(f"{shape} {mode}", flush=True)
      for name in impls:
        rel = [
          f"{med[name] / med[ref]:.2f}x {ref} (cpu {cpu_med[name] / cpu_med[ref]:.2f}x)"
          for ref in ("flax", "torch")
          if ref in med and ref != name
        ]
        comp = fns[name][mode][1]
        print(
          f"  {name:10s} {med[name]:9.2f} ms  cpu {cpu_med[name]:9.2f} ms  compile {comp:5.2f} s  {'  '.join(rel)}",
          flush=True,
        )


if __name__ == "__main__":
  main()
