"""jaxgru's modules for ``flax.nnx``: the same maths and parameter names as the linen modules.

This module holds only the public names; the implementation is in ``jaxgru._src.nnx``.
"""

from jaxgru._src.nnx import GRU as GRU
from jaxgru._src.nnx import GRUCell as GRUCell
from jaxgru._src.nnx import MinGRU as MinGRU

__all__ = (
    "GRU",
    "GRUCell",
    "MinGRU",
)
