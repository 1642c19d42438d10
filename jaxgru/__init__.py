"""jaxgru: gated recurrent units for JAX and Flax, numerically equal to PyTorch."""

from jaxgru import custom_vjp
from jaxgru import gates
from jaxgru import interop
from jaxgru import mingru
from jaxgru import pallas_gru
from jaxgru.cell import GRUCell
from jaxgru.gates import Variant
from jaxgru.gates import gru_step
from jaxgru.layer import GRU
from jaxgru.mingru import MinGRU
from jaxgru.scan import Implementation
from jaxgru.scan import Remat
from jaxgru.scan import gru_scan
from jaxgru.scan import gru_scan_remat

__version__ = "0.1.0"

__all__ = (
    "GRU",
    "GRUCell",
    "Implementation",
    "MinGRU",
    "Remat",
    "Variant",
    "custom_vjp",
    "gates",
    "gru_scan",
    "gru_scan_remat",
    "gru_step",
    "interop",
    "mingru",
    "pallas_gru",
)
