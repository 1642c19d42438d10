"""jaxgru: gated recurrent units for JAX and Flax, numerically equal to PyTorch.

Where things are: the gate equations and the one step every implementation
runs in :mod:`jaxgru.gates`; the flax.linen cell in :mod:`jaxgru.cell`; the
multi-layer layer in :mod:`jaxgru.layer` (its pure stacking in
:mod:`jaxgru.sequences`); the flax.nnx cell and layers in :mod:`jaxgru.nnx`;
parameter shapes and per-gate initialization in :mod:`jaxgru.params`; the implementations (:mod:`jaxgru.scan`,
:mod:`jaxgru.backward`, :mod:`jaxgru.pallas_gru`) behind one dispatch,
:mod:`jaxgru.dispatch`; weights in and out in :mod:`jaxgru.interop`.
"""

from importlib import metadata as _metadata

from jaxgru import backward
from jaxgru import dispatch
from jaxgru import export
from jaxgru import gates
from jaxgru import interop
from jaxgru import mingru
from jaxgru import nnx
from jaxgru import params
from jaxgru import scan
from jaxgru import sequences
from jaxgru.backward import gru_scan_custom_vjp
from jaxgru.backward import gru_scan_from_inputs
from jaxgru.cell import GRUCell
from jaxgru.dispatch import Implementation
from jaxgru.gates import Variant
from jaxgru.gates import gru_step
from jaxgru.layer import GRU
from jaxgru.mingru import MinGRU
from jaxgru.scan import Remat
from jaxgru.scan import gru_scan
from jaxgru.scan import gru_scan_remat
from jaxgru.sequences import gru_stack
from jaxgru.sequences import param_name

try:
  __version__ = _metadata.version("jaxgru")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
  __version__ = "0+unknown"

__all__ = (
    "GRU",
    "GRUCell",
    "Implementation",
    "MinGRU",
    "Remat",
    "Variant",
    "backward",
    "dispatch",
    "export",
    "gates",
    "gru_scan",
    "gru_scan_custom_vjp",
    "gru_scan_from_inputs",
    "gru_scan_remat",
    "gru_stack",
    "gru_step",
    "interop",
    "mingru",
    "nnx",
    "params",
    "param_name",
    "scan",
    "sequences",
)
