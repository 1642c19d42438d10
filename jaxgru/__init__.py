"""jaxgru: gated recurrent units for JAX and Flax, numerically equal to PyTorch."""

from jaxgru import gates
from jaxgru import interop
from jaxgru.cell import GRUCell
from jaxgru.gates import Variant
from jaxgru.gates import gru_step
from jaxgru.layer import GRU
from jaxgru.scan import Implementation
from jaxgru.scan import gru_scan

__version__ = "0.1.0"

__all__ = (
    "GRU",
    "GRUCell",
    "Implementation",
    "Variant",
    "gates",
    "gru_scan",
    "gru_step",
    "interop",
)
