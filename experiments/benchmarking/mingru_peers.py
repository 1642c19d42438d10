"""minGRU rows (Feng et al. 2024): ``jaxgru.MinGRU`` in each of its modes.

They compute another model than the GRU rows, so they are checked against
their own float32 reference (the sequential mode at highest precision); the
ratios to flax and torch still compare them with a GRU of the same shape.
All three modes use the paper's ``g`` candidate, which the log-space mode needs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from benchmarking.peers import jax_runner
from benchmarking.problem import Problem
from benchmarking.problem import param_name
from benchmarking.registry import Mode
from benchmarking.registry import Runner
from benchmarking.registry import register_peer
from benchmarking.registry import register_reference
from jaxgru import MinGRU
from jaxgru import mingru

MinGRUMode = mingru.Mode  # the library's minGRU modes; not a top-level name of jaxgru


def _params(problem: Problem) -> dict:
  """minGRU weights ``{"layer_{l}": {"kernel": [I_l, 2H], "bias": [2H]}}`` drawn from the problem's seed."""
  _, _, inputs, hidden = problem.shape
  rng = np.random.default_rng(problem.seed + 1)
  bound = 1.0 / np.sqrt(hidden)
  params = {}
  for layer in range(problem.num_layers):
    fan_in = inputs if layer == 0 else hidden
    params[param_name(layer, 0)] = {
      "kernel": jnp.asarray(rng.uniform(-bound, bound, (fan_in, 2 * hidden)), jnp.float32),
      "bias": jnp.asarray(rng.uniform(-bound, bound, (2 * hidden,)), jnp.float32),
    }
  return params


def _flat(grads) -> dict:
  return {f"{layer}/{name}": g for layer, p in grads.items() for name, g in p.items()}


def _apply(problem: Problem, mode: MinGRUMode, dtype):
  layer = MinGRU(
    problem.shape[3],
    num_layers=problem.num_layers,
    mode=mode,
    candidate="g",
    dtype=jnp.dtype(dtype),
    param_dtype=jnp.float32,
  )
  return lambda params, x: layer.apply({"params": params}, x)[0]


def _peer(mode: MinGRUMode):
  def factory(problem: Problem, run_mode: Mode) -> Runner:
    return jax_runner(_apply(problem, mode, problem.dtype), _params(problem), problem, run_mode, grads_to_layout=_flat)

  return factory


for _mode in MinGRUMode:
  register_peer(f"mingru.{_mode.value}", model="mingru")(_peer(_mode))


@register_reference("mingru")
def mingru_reference(problem: Problem, mode: Mode) -> dict[str, np.ndarray]:
  """Every minGRU row must match: sequential mode, float32, highest matmul precision."""
  reference = problem._replace(dtype="float32")
  with jax.default_matmul_precision("highest"):
    runner = jax_runner(
      _apply(reference, MinGRUMode.SEQUENTIAL, jnp.float32), _params(reference), reference, mode, grads_to_layout=_flat
    )
    return dict(runner.to_numpy(runner.call()))
