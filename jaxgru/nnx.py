"""jaxgru's modules for ``flax.nnx``: the same maths and parameter names as the linen modules.

This module holds only the public names; the implementation is in ``jaxgru._src.nnx`` and
``jaxgru._src.mingru_nnx``.
"""

from jaxgru._src.mingru_nnx import MinGRU as MinGRU
from jaxgru._src.nnx import GRU as GRU
from jaxgru._src.nnx import GRUCell as GRUCell

__all__ = (
  "GRU",
  "GRUCell",
  "MinGRU",
)
