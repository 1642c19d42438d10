"""One benchmark problem: a shape, a dtype and the weights and data every peer shares."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import ml_dtypes  # noqa: F401  (registers bfloat16 with NumPy; a jax dependency)
import numpy as np

import jaxgru

# The library's names of one layer and direction's parameters ("layer_0", "layer_0_reverse"),
# shared by every row; not a top-level name of jaxgru, so reached through its module.
param_name = jaxgru.param_name

DTYPES = ("float32", "bfloat16", "float16")  # compute dtypes every peer supports


class Problem(NamedTuple):
  """Shared inputs of one benchmark case, as float32 NumPy master copies.

  Values are rounded to ``dtype`` and stored as float32, so a half-precision
  peer and the float32 reference see the same numbers. ``params`` are GRU
  weights; rows of another model draw their own from ``seed`` and ``shape``.
  """

  shape: tuple[int, int, int, int]  # (B, T, I, H)
  dtype: str  # compute dtype: "float32", "bfloat16", "float16"
  num_layers: int  # L, stacked layers
  seed: int  # for peers that need weights of their own (other models)
  params: dict  # {"layer_{l}[_reverse]": {"input_kernel": [I_l, 3H], "recurrent_kernel": [H, 3H],
  #              "input_bias": [3H], "recurrent_bias": [3H]}}, float32; I_l = I, then D*H
  inputs: np.ndarray  # [B, T, I] float32
  cotangent: np.ndarray  # [B, T, D*H] float32; the loss is sum(outputs * cotangent)
  bidirectional: bool = False  # D = 2 (PyTorch's bidirectional=True): outputs [B, T, 2H]

  @property
  def directions(self) -> int:
    """D: 2 when bidirectional, else 1."""
    return 2 if self.bidirectional else 1

  @property
  def tokens(self) -> int:
    """B * T, the tokens one call processes."""
    return self.shape[0] * self.shape[1]

  @property
  def label(self) -> str:
    """``BxTxIxH``, then the layers and directions where they are not one (``BxTxIxH L6 bi``)."""
    return case_label(self.shape, self.num_layers, self.bidirectional)


def case_label(shape, num_layers: int = 1, bidirectional: bool = False) -> str:
  """``BxTxIxH`` with `` L{layers}`` when stacked and `` bi`` when bidirectional.

  >>> case_label((10, 512, 128, 256)), case_label((10, 512, 128, 256), 6, True)
  ('10x512x128x256', '10x512x128x256 L6 bi')
  """
  return "x".join(map(str, shape)) + (f" L{num_layers}" if num_layers > 1 else "") + (" bi" if bidirectional else "")


def round_to(array: np.ndarray, dtype: str) -> np.ndarray:
  """``array`` rounded to ``dtype`` and returned as float32."""
  return np.asarray(jnp.asarray(array, jnp.float32).astype(dtype).astype(jnp.float32))


def make_problem(shape, dtype: str, *, num_layers: int = 1, bidirectional: bool = False, seed: int = 0) -> Problem:
  """Draws weights, inputs and a loss cotangent for one case.

  Weights are drawn as PyTorch draws them, ``U(-1/sqrt(H), 1/sqrt(H))``, biases
  included: non-zero recurrent biases make a peer that drops or folds them
  wrongly fail the equality check.

  Args:
    shape: ``(B, T, I, H)``.
    dtype: compute dtype name.
    num_layers: L.
    bidirectional: D = 2 directions per layer (``layer_{l}_reverse`` weights too).
    seed: NumPy seed.

  Returns:
    The :class:`Problem`.

  >>> p = make_problem((2, 3, 4, 5), "float32", num_layers=2)
  >>> p.inputs.shape, p.params["layer_1"]["input_kernel"].shape, p.label
  ((2, 3, 4), (5, 15), '2x3x4x5 L2')
  >>> p = make_problem((2, 3, 4, 5), "float32", num_layers=2, bidirectional=True)
  >>> p.params["layer_1_reverse"]["input_kernel"].shape, p.cotangent.shape
  ((10, 15), (2, 3, 10))
  """
  shape = tuple(shape)
  if len(shape) != 4 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in shape):
    raise ValueError(f"shape must be four positive integers (B, T, I, H), got {shape!r}")
  if dtype not in DTYPES:
    raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
  if not isinstance(num_layers, (int, np.integer)) or isinstance(num_layers, bool) or num_layers < 1:
    raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
  if not isinstance(bidirectional, (bool, np.bool_)):
    raise ValueError(f"bidirectional must be a bool, got {bidirectional!r}")
  batch, steps, features, hidden = (int(s) for s in shape)
  rng = np.random.default_rng(seed)
  bound = 1.0 / np.sqrt(hidden)
  directions = 2 if bidirectional else 1
  params = {}
  for layer in range(num_layers):
    fan_in = features if layer == 0 else directions * hidden
    sizes = {
      "input_kernel": (fan_in, 3 * hidden),
      "recurrent_kernel": (hidden, 3 * hidden),
      "input_bias": (3 * hidden,),
      "recurrent_bias": (3 * hidden,),
    }
    for direction in range(directions):
      params[param_name(layer, direction)] = {
        k: round_to(rng.uniform(-bound, bound, size).astype(np.float32), dtype) for k, size in sizes.items()
      }
  inputs = round_to(rng.standard_normal((batch, steps, features), np.float32), dtype)
  cotangent = round_to(rng.standard_normal((batch, steps, directions * hidden), np.float32), dtype)
  return Problem(
    (batch, steps, features, hidden), dtype, num_layers, seed, params, inputs, cotangent, bool(bidirectional)
  )


def flat_params(params: dict, prefix: str = "") -> dict[str, np.ndarray]:
  """``{"layer_0": {"input_kernel": a}}`` as ``{"layer_0/input_kernel": a}`` (NumPy)."""
  return {f"{prefix}{layer}/{k}": np.asarray(v) for layer, p in params.items() for k, v in p.items()}
