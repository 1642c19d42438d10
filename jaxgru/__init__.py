"""jaxgru: gated recurrent units for JAX and Flax, numerically equal to PyTorch.

The public API is :data:`__all__` (listed in the README): the modules
(:class:`GRU`, :class:`GRUCell`, :class:`MinGRU`; :mod:`jaxgru.nnx` for
``flax.nnx``), the pure functions (:func:`gru_step`, the ``gru_scan*``
runners, :func:`gru_stack`, the gate equations in :mod:`jaxgru.gates`), the
choices (:class:`Implementation`, :class:`Variant`, :class:`Remat`) and
:func:`jaxgru.dispatch.resolve_implementation`, weights in and out in
:mod:`jaxgru.interop`, ONNX and StableHLO export in :mod:`jaxgru.export`,
minGRU's functions in :mod:`jaxgru.mingru`. Other
submodules are the implementation: their names are shared between jaxgru's
modules, not promised to users.

Where things are: the gate equations and the one step every implementation
runs in :mod:`jaxgru.gates`; the dtype rule in :mod:`jaxgru.dtypes`; the one
padded loop and the ``"scan"`` runner in :mod:`jaxgru.scan`, the hand-written
backward in :mod:`jaxgru.backward`, the Pallas kernel in
:mod:`jaxgru.pallas_gru`, all run by :func:`jaxgru.dispatch.run_direction`;
the one layer body in :mod:`jaxgru.sequences`, which the linen
(:mod:`jaxgru.layer`, :mod:`jaxgru.cell`) and nnx (:mod:`jaxgru.nnx`) modules
call with their parameters and random keys.
"""

from importlib import metadata as _metadata

from jaxgru import dispatch
from jaxgru import export
from jaxgru import gates
from jaxgru import interop
from jaxgru import mingru
from jaxgru import nnx
from jaxgru.backward import gru_scan_custom_vjp
from jaxgru.backward import gru_scan_custom_vjp_in_loop
from jaxgru.cell import GRUCell
from jaxgru.dispatch import Implementation
from jaxgru.gates import Variant
from jaxgru.gates import gru_step
from jaxgru.layer import GRU
from jaxgru.mingru import MinGRU
from jaxgru.pallas_gru import gru_scan_pallas
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
    "dispatch",
    "export",
    "gates",
    "gru_scan",
    "gru_scan_custom_vjp",
    "gru_scan_custom_vjp_in_loop",
    "gru_scan_pallas",
    "gru_scan_remat",
    "gru_stack",
    "gru_step",
    "interop",
    "mingru",
    "nnx",
    "param_name",
)
