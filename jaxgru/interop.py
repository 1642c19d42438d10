"""Weights in and out: PyTorch's ``nn.GRU``, Flax's cells (linen and nnx) and Keras' ``GRU``.

This module holds only the public names; the implementation is in ``jaxgru._src.interop``.
"""

from jaxgru._src.interop import from_flax_cell as from_flax_cell
from jaxgru._src.interop import from_keras as from_keras
from jaxgru._src.interop import from_torch as from_torch
from jaxgru._src.interop import to_flax_cell as to_flax_cell
from jaxgru._src.interop import to_linen as to_linen
from jaxgru._src.interop import to_nnx as to_nnx
from jaxgru._src.interop import to_torch as to_torch

__all__ = (
  "from_flax_cell",
  "from_keras",
  "from_torch",
  "to_flax_cell",
  "to_linen",
  "to_nnx",
  "to_torch",
)
