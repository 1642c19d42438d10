r"""Every ``jaxgru.GRU`` implementation against a float64 reference: outputs, final states and every gradient.

The reference is ``torch.nn.GRU`` in float64 on the CPU, an implementation
independent of jaxgru, fed packed sequences for the variable lengths (PyTorch's
own semantics, which jaxgru promises: zero outputs past a sequence's length,
the reverse direction starting at its last valid step, ``h_n`` at that step).
The loss is

.. math::

   \mathcal{L} = \textstyle\sum y \odot c_y + \sum h_n \odot c_h

with random cotangents, so every output and final state enters its gradients.
An array passes when its relative error :math:`\lVert x - r\rVert_2 / \lVert r\rVert_2`
is within the dtype's tolerance (:data:`TOLERANCES`); a NaN or inf never passes.
Each check draws fresh weights and inputs from its own seed.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import jaxgru
from benchmarking.peers import torch_to_layout
from benchmarking.problem import Problem
from benchmarking.problem import flat_params
from benchmarking.problem import make_problem
from jaxgru import interop

# Relative error ||x - ref|| / ||ref|| allowed per array, by compute dtype. float32: the default
# matmul precision of JAX and Triton on a GPU rounds float32 products to TF32 (10 mantissa bits;
# about 3e-4 for one product, growing through the recurrence). bfloat16: 8 mantissa bits on every
# product's inputs, the carry and the accumulation kept in float32.
TOLERANCES = {"float32": 2e-3, "bfloat16": 3e-2}


class AccuracyResult(NamedTuple):
  """One implementation at one compute dtype against the float64 reference."""

  implementation: str  # a jaxgru.Implementation value
  dtype: str  # compute dtype
  status: str  # "ok", "mismatch", "error" (raised; the message says why)
  tolerance: float  # relative error allowed per array
  errors: dict  # {array name: relative error}; "inf" where not finite
  worst: str  # the array with the largest relative error
  worst_error: float
  seconds: float  # trace + compile + one run
  message: str = ""


def draw_extras(problem: Problem, seed: int) -> dict[str, np.ndarray]:
  """Lengths ``[B]`` (the full length, 1 and random ones), ``h0 [L*D, B, H]`` and ``c_h [L*D, B, H]``, float32."""
  batch, steps, _, hidden = problem.shape
  rng = np.random.default_rng([seed, 7])
  lengths = rng.integers(1, steps + 1, batch)
  lengths[0], lengths[-1] = steps, 1
  states = problem.num_layers * problem.directions
  return {
    "lengths": lengths.astype(np.int32),
    "h0": rng.standard_normal((states, batch, hidden)).astype(np.float32) * 0.5,
    "cot_h": rng.standard_normal((states, batch, hidden)).astype(np.float32),
  }


def float64_reference(problem: Problem, extras: dict) -> dict[str, np.ndarray]:
  """``torch.nn.GRU`` in float64 on the CPU: ``outputs``, ``final_carry``, ``grad/...`` in jaxgru's layout."""
  import torch  # noqa: PLC0415  (optional: the bench extra)

  _, steps, features, hidden = problem.shape
  layer = jaxgru.GRU(features=hidden, num_layers=problem.num_layers, bidirectional=problem.bidirectional)
  state = interop.to_torch(layer, {"params": problem.params})
  gru = torch.nn.GRU(
    features,
    hidden,
    num_layers=problem.num_layers,
    bidirectional=problem.bidirectional,
    batch_first=True,
    dtype=torch.float64,
  )
  gru.load_state_dict({k: torch.from_numpy(np.asarray(v, np.float64)) for k, v in state.items()})
  x = torch.from_numpy(problem.inputs.astype(np.float64)).requires_grad_(True)
  h0 = torch.from_numpy(extras["h0"].astype(np.float64)).requires_grad_(True)
  packed = torch.nn.utils.rnn.pack_padded_sequence(
    x, torch.from_numpy(extras["lengths"].astype(np.int64)), batch_first=True, enforce_sorted=False
  )
  out, h_n = gru(packed, h0)
  y, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=steps)
  loss = (y * torch.from_numpy(problem.cotangent.astype(np.float64))).sum() + (
    h_n * torch.from_numpy(extras["cot_h"].astype(np.float64))
  ).sum()
  names = [n for n, _ in gru.named_parameters()]
  grads = torch.autograd.grad(loss, [x, h0, *gru.parameters()])
  as_np = [g.detach().numpy() for g in grads]
  result = {
    "outputs": y.detach().numpy(),
    "final_carry": h_n.detach().numpy(),
    "grad/inputs": as_np[0],
    "grad/initial_carry": as_np[1],
  }
  result.update({f"grad/{k}": v for k, v in torch_to_layout(names, as_np[2:]).items()})
  return result


def jaxgru_result(problem: Problem, extras: dict, implementation: str, dtype: str) -> dict[str, np.ndarray]:
  """The same quantities from ``jaxgru.GRU(implementation=..., dtype=...)`` on the default device, jitted."""
  hidden = problem.shape[3]
  layer = jaxgru.GRU(
    features=hidden,
    num_layers=problem.num_layers,
    bidirectional=problem.bidirectional,
    implementation=implementation,
    dtype=jnp.dtype(dtype),
    param_dtype=jnp.float32,
  )
  lengths = jnp.asarray(extras["lengths"])
  cot_y, cot_h = jnp.asarray(problem.cotangent), jnp.asarray(extras["cot_h"])

  def loss(params, x, h0):
    y, h_n = layer.apply({"params": params}, x, seq_lengths=lengths, initial_carry=h0)
    y, h_n = y.astype(jnp.float32), h_n.astype(jnp.float32)
    return jnp.sum(y * cot_y) + jnp.sum(h_n * cot_h), (y, h_n)

  step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True))
  params = jax.tree.map(jnp.asarray, problem.params)
  (_, (y, h_n)), (d_params, d_x, d_h0) = jax.block_until_ready(
    step(params, jnp.asarray(problem.inputs, dtype), jnp.asarray(extras["h0"]))
  )
  as_np = lambda a: np.asarray(jnp.asarray(a, jnp.float32))  # noqa: E731
  result = {
    "outputs": as_np(y),
    "final_carry": as_np(h_n),
    "grad/inputs": as_np(d_x),
    "grad/initial_carry": as_np(d_h0),
  }
  result.update({f"grad/{k}": as_np(v) for k, v in flat_params(d_params).items()})
  return result


def relative_errors(result: dict, reference: dict) -> dict[str, float]:
  """``||x - r||_2 / ||r||_2`` per array (``inf`` where ``x`` is not finite or the names or shapes differ).

  >>> round(relative_errors({"a": np.array([1.0, 2.0])}, {"a": np.array([1.0, 2.5])})["a"], 4)  # 0.5 / sqrt(7.25)
  0.1857
  """
  errors = {}
  for name, ref in reference.items():
    got = result.get(name)
    if got is None or np.shape(got) != np.shape(ref) or not np.all(np.isfinite(got)):
      errors[name] = float("inf")
      continue
    ref = np.asarray(ref, np.float64)
    scale = float(np.linalg.norm(ref)) or 1.0
    errors[name] = float(np.linalg.norm(np.asarray(got, np.float64) - ref)) / scale
  return errors


def check(
  implementation: str, dtype: str, *, shape, num_layers: int, seed: int, tolerance: float | None = None
) -> AccuracyResult:
  """Checks one implementation at one compute dtype on a fresh bidirectional problem with variable lengths.

  Args:
    implementation: a :class:`jaxgru.Implementation` value.
    dtype: compute dtype, ``"float32"`` or ``"bfloat16"`` (weights and inputs are rounded to it,
      and the reference sees the rounded values, so the error is the computation's alone).
    shape: ``(B, T, I, H)``.
    num_layers: L.
    seed: weights, inputs, lengths, initial state and cotangents.
    tolerance: relative error allowed per array; ``None``: :data:`TOLERANCES`.

  Returns:
    The :class:`AccuracyResult`; an implementation that raises (the Pallas
    kernel off a GPU) is an ``"error"`` result with the reason.
  """
  tolerance = TOLERANCES[dtype] if tolerance is None else tolerance
  problem = make_problem(shape, dtype, num_layers=num_layers, bidirectional=True, seed=seed)
  extras = draw_extras(problem, seed)
  start = time.perf_counter()
  try:
    result = jaxgru_result(problem, extras, implementation, dtype)
  except Exception as e:  # reported, not fatal: the other implementations still get checked
    message = f"{type(e).__name__}: {e}".splitlines()[0][:300]
    return AccuracyResult(
      implementation, dtype, "error", tolerance, {}, "", float("inf"), time.perf_counter() - start, message
    )
  seconds = time.perf_counter() - start
  errors = relative_errors(result, float64_reference(problem, extras))
  worst = max(errors, key=errors.get)
  ok = all(e <= tolerance for e in errors.values())
  return AccuracyResult(
    implementation,
    dtype,
    "ok" if ok else "mismatch",
    tolerance,
    errors,
    worst,
    errors[worst],
    seconds,
    "" if ok else f"{worst}: {errors[worst]:.2e} > {tolerance:.0e}",
  )
