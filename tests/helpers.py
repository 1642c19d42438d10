"""Shared builders of test problems: one GRU direction, its reference, and every implementation as a runner."""

from __future__ import annotations

import functools
import itertools
from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import jaxgru
from jaxgru._src import backward
from jaxgru._src import dispatch

LENGTHS = np.array([6, 2, 0])  # full, ragged, empty (for T = 6, B = 3)


def gru_params(key, features: int, hidden: int, dtype=jnp.float32, scale: float = 0.5) -> dict:
  """Random parameters of one GRU direction: ``input_kernel [I, 3H]``, ``recurrent_kernel [H, 3H]``, biases ``[3H]``."""
  k = jax.random.split(key, 4)
  return {
    "input_kernel": (scale * jax.random.normal(k[0], (features, 3 * hidden))).astype(dtype),
    "recurrent_kernel": (scale * jax.random.normal(k[1], (hidden, 3 * hidden))).astype(dtype),
    "input_bias": (0.3 * jax.random.normal(k[2], (3 * hidden,))).astype(dtype),
    "recurrent_bias": (0.3 * jax.random.normal(k[3], (3 * hidden,))).astype(dtype),
  }


def direction_problem(seed=0, *, steps=6, batch=3, features=2, hidden=4, dtype=jnp.float32):
  """``(params, x [T, B, I], h0 [B, H], w_y [T, B, H], w_h [B, H])``; ``w_*`` weight a scalar loss."""
  keys = jax.random.split(jax.random.key(seed), 5)
  params = gru_params(keys[0], features, hidden, dtype)
  x = jax.random.normal(keys[1], (steps, batch, features)).astype(dtype)
  h0 = 0.5 * jax.random.normal(keys[2], (batch, hidden))
  w_y = jax.random.normal(keys[3], (steps, batch, hidden))
  w_h = jax.random.normal(keys[4], (batch, hidden))
  return params, x, h0, w_y, w_h


def _dispatched(implementation: str, **fixed):
  """``implementation`` as ``run(params, x [T, B, I], h0 [B, H], **kwargs)``: the real run path, :func:`jaxgru._src.dispatch.run_direction`."""
  return functools.partial(dispatch.run_direction, implementation, **fixed)


# The checked public runners over projections ``x_proj [T, B, 3H]``.
PROJECTION_RUNNERS = {
  "scan": jaxgru.gru_scan,
  "custom_vjp": backward.gru_scan_custom_vjp,
  "pallas_interpret": functools.partial(jaxgru.gru_scan_pallas, interpret=True),
}

# Every implementation as ``run(params, x [T, B, I], h0 [B, H], **run_direction kwargs)``.
RUNNERS = {
  "scan": _dispatched("scan"),
  "scan_remat_step": _dispatched("scan", remat="step"),
  "scan_remat_segments": _dispatched("scan", remat="segments", remat_segment=3),
  "custom_vjp": _dispatched("custom_vjp"),
  "custom_vjp_in_loop": _dispatched("custom_vjp_in_loop"),
  "pallas_interpret": _dispatched("pallas", interpret=True),
}


def loss_fn(runner, w_y, w_h, **kwargs):
  """``(params, x, h0) -> (loss, (ys, h_last))`` with random weights on both outputs."""

  def loss(params, x, h0):
    ys, h_last = runner(params, x, h0, **kwargs)
    return jnp.sum(ys * w_y) + jnp.sum(h_last * w_h), (ys, h_last)

  return loss


def values_and_grads(runner, problem, **kwargs):
  """Jitted outputs and gradients w.r.t. params, x and h0 of a weighted loss."""
  params, x, h0, w_y, w_h = problem
  grad = jax.value_and_grad(loss_fn(runner, w_y, w_h, **kwargs), argnums=(0, 1, 2), has_aux=True)
  (_, outs), grads = jax.jit(grad)(params, x, h0)
  return outs, grads


def perturbed(tree, key, scale: float = 0.3):
  """``tree`` with random normal noise of ``scale`` added to every leaf (non-zero biases for Flax's cells)."""
  leaves, structure = jax.tree.flatten(tree)
  keys = jax.random.split(key, len(leaves))
  return jax.tree.unflatten(
    structure, [l + scale * jax.random.normal(k, l.shape, l.dtype) for l, k in zip(leaves, keys)]
  )


def assert_trees_close(tree, tree_ref, atol):
  """Same structure, shapes and dtypes, values within ``atol``."""
  flat, flat_ref = jax.tree.leaves(tree), jax.tree.leaves(tree_ref)
  assert len(flat) == len(flat_ref)
  for a, a_ref in zip(flat, flat_ref):
    assert a.shape == a_ref.shape and a.dtype == a_ref.dtype, (a.shape, a_ref.shape, a.dtype, a_ref.dtype)
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(a_ref, np.float64), atol=atol, rtol=0)


def numpy_gru(params, x, h0, *, variant="reset_after", seq_lengths=None, reverse=False):
  """An independent float64 NumPy GRU direction with PyTorch's packed-sequence semantics."""
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  x, h = np.asarray(x, np.float64), np.asarray(h0, np.float64).copy()
  steps, batch, _ = x.shape
  hidden = h.shape[-1]
  lengths = np.full(batch, steps) if seq_lengths is None else np.asarray(seq_lengths)
  sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
  ys = np.zeros((steps, batch, hidden))
  order = range(steps - 1, -1, -1) if reverse else range(steps)
  w_hr, w_hz, w_hn = np.split(p["recurrent_kernel"], 3, axis=1)
  b_hr, b_hz, b_hn = np.split(p["recurrent_bias"], 3)
  for t in order:
    xi = x[t] @ p["input_kernel"] + p["input_bias"]
    x_r, x_z, x_n = np.split(xi, 3, axis=1)
    r = sigmoid(x_r + h @ w_hr + b_hr)
    z = sigmoid(x_z + h @ w_hz + b_hz)
    if variant == "reset_after":
      n = np.tanh(x_n + r * (h @ w_hn + b_hn))
    else:
      n = np.tanh(x_n + (r * h) @ w_hn + b_hn)
    h_new = (1 - z) * n + z * h
    valid = (t < lengths)[:, None]
    h = np.where(valid, h_new, h)
    ys[t] = np.where(valid, h_new, 0.0)
  return ys, h


# Every layer count (1-3), direction, length and initial-state combination against torch.nn.GRU.
TORCH_CASES = list(itertools.product([1, 2, 3], [False, True], [False, True], [False, True]))


class TorchProblem(NamedTuple):
  """A random ``torch.nn.GRU`` problem, batch first, and torch's results on it."""

  gru: Any  # torch.nn.GRU, batch_first=True
  x: np.ndarray  # [B, T, I] float32
  lengths: np.ndarray | None  # [B] int64
  h0: np.ndarray | None  # [L*D, B, H]
  gy: np.ndarray  # [B, T, D*H] cotangent of the outputs
  gh: np.ndarray  # [L*D, B, H] cotangent of h_n
  y: np.ndarray  # torch's outputs [B, T, D*H]
  h_n: np.ndarray  # torch's final state [L*D, B, H]
  grad_x: np.ndarray  # d loss / d x
  grad_h0: np.ndarray | None  # d loss / d h0
  grad_params: dict  # PyTorch name -> d loss / d weight

  def loss(self, y, h_n):
    """The scalar loss whose gradients are compared: random weights on every output and state element."""
    return jnp.sum(y * self.gy) + jnp.sum(h_n * self.gh)


def torch_problem(num_layers, bidirectional, with_lengths, with_h0, *, batch=3, steps=7, features=4, hidden=5):
  """Builds a :class:`TorchProblem` and runs torch on it (packing when there are lengths)."""
  import torch  # noqa: PLC0415 - only the tests that compare with torch need it

  torch.manual_seed(num_layers * 8 + bidirectional * 4 + with_lengths * 2 + with_h0)
  rng = np.random.default_rng(num_layers)
  gru = torch.nn.GRU(features, hidden, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)
  directions = 2 if bidirectional else 1
  x = rng.normal(size=(batch, steps, features)).astype(np.float32)
  lengths = np.array([steps, 1, 4][:batch], np.int64) if with_lengths else None
  h0 = rng.normal(size=(num_layers * directions, batch, hidden)).astype(np.float32) if with_h0 else None
  gy = rng.normal(size=(batch, steps, directions * hidden)).astype(np.float32)
  gh = rng.normal(size=(num_layers * directions, batch, hidden)).astype(np.float32)
  xt = torch.from_numpy(x).requires_grad_(True)
  h0t = None if h0 is None else torch.from_numpy(h0).requires_grad_(True)
  if lengths is None:
    y, h_n = gru(xt, h0t)
  else:
    packed = torch.nn.utils.rnn.pack_padded_sequence(
      xt, torch.from_numpy(lengths), batch_first=True, enforce_sorted=False
    )
    y, h_n = gru(packed, h0t)
    y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=steps)
  ((y * torch.from_numpy(gy)).sum() + (h_n * torch.from_numpy(gh)).sum()).backward()
  return TorchProblem(
    gru,
    x,
    lengths,
    h0,
    gy,
    gh,
    y.detach().numpy(),
    h_n.detach().numpy(),
    xt.grad.numpy(),
    None if h0t is None else h0t.grad.numpy(),
    {name: p.grad.numpy() for name, p in gru.named_parameters()},
  )


def assert_matches_torch(problem: TorchProblem, outputs, input_grads, param_grads: dict, atol: float):
  """``outputs = (y, h_n)``, ``input_grads = (d x, d h0)`` and PyTorch-named ``param_grads`` equal torch's."""
  y, h_n = outputs
  assert y.shape == problem.y.shape and y.dtype == jnp.float32
  assert h_n.shape == problem.h_n.shape and h_n.dtype == jnp.float32
  np.testing.assert_allclose(y, problem.y, atol=atol, rtol=0)
  np.testing.assert_allclose(h_n, problem.h_n, atol=atol, rtol=0)
  np.testing.assert_allclose(input_grads[0], problem.grad_x, atol=atol, rtol=0)
  if problem.grad_h0 is not None:
    np.testing.assert_allclose(input_grads[1], problem.grad_h0, atol=atol, rtol=0)
  assert set(param_grads) == set(problem.grad_params)
  for name, g in problem.grad_params.items():
    np.testing.assert_allclose(param_grads[name], g, atol=atol, rtol=0, err_msg=name)


# Episode resets: T = 6, B = 4: resets at the first and the last step; at the last valid step and on
# padding (ignored); on an empty sequence; at every step.
RESET_LENGTHS = np.array([6, 2, 0, 6])
RESETS = np.zeros((6, 4), bool)  # [T, B]
RESETS[[0, 5], 0] = True
RESETS[[1, 2], 1] = True
RESETS[0, 2] = True
RESETS[:, 3] = True


def episodes(resets, length):
  """``[(start, stop), ...]``: the episodes of one sequence of ``length`` valid steps."""
  starts = sorted({0} | {t for t in range(length) if resets[t]})
  return [(s, e) for s, e in zip(starts, starts[1:] + [length]) if s < e]


def segments_reference(params, x, h0, h_reset, resets, lengths, *, reverse, variant="reset_after"):
  """Runs every episode of every sequence separately (float64 NumPy): ``(ys [T, B, H], h_last [B, H])``."""
  steps, batch, _ = x.shape
  ys, h_last = np.zeros((steps, batch, h0.shape[-1])), np.asarray(h0, np.float64).copy()
  for b in range(batch):
    length = int(lengths[b])
    chain = episodes(resets[:, b], length)
    for i, (s, e) in enumerate(chain):
      first = (i == len(chain) - 1) if reverse else (i == 0 and not resets[0, b])
      start = h0[b] if first else h_reset[b]
      y, h = numpy_gru(params, x[s:e, b : b + 1], np.asarray(start)[None], variant=variant, reverse=reverse)
      ys[s:e, b] = y[:, 0]
      if (i == 0) if reverse else (i == len(chain) - 1):
        h_last[b] = h[0]
  return ys, h_last


def reset_problem(seed=0, steps=6, batch=4):
  """``(params, x [T, B, I], h0 [B, H], h_reset [B, H])`` for :data:`RESETS`."""
  params, x, h0, _, _ = direction_problem(seed, steps=steps, batch=batch)
  h_reset = 0.5 * jax.random.normal(jax.random.key(seed + 7), h0.shape)
  return params, x, h0, h_reset
