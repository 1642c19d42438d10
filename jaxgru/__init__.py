"""jaxgru: gated recurrent units for JAX and Flax, numerically equal to PyTorch.

The public API is :data:`__all__` and the ``__all__`` of the public
submodules :mod:`jaxgru.gates`, :mod:`jaxgru.nnx`, :mod:`jaxgru.mingru`,
:mod:`jaxgru.interop` and :mod:`jaxgru.export` (listed in the API reference, docs/api.md): the
linen modules (:class:`GRU`, :class:`GRUCell`, :class:`MinGRU`; their
``flax.nnx`` twins in :mod:`jaxgru.nnx`), the pure functions (:func:`gru_step`,
:func:`gru_scan`, :func:`gru_scan_remat`, :func:`gru_scan_pallas`,
:func:`gru_stack`, the gate equations in :mod:`jaxgru.gates`), the choices
(:class:`Implementation`, :class:`Variant`, :class:`Remat`) and
:func:`resolve_implementation`. The layer picks its runner from
``implementation``; the hand-written backward runs as
``GRU(..., implementation="custom_vjp")``.

The implementation lives in the private package ``jaxgru._src``: the gate
equations and the one step in ``_src/gates.py``, the dtype rule in
``_src/dtypes.py``, the checks in ``_src/validation.py``, the run request
(checked once, with the padding mask and the reset rule) in ``_src/request.py``,
the one padded loop and the ``"scan"`` runner in ``_src/scan.py``, the
hand-written backward in ``_src/backward.py``, the Pallas kernel in
``_src/pallas_gru.py``, the choice of runner in ``_src/dispatch.py``, the one
layer body in ``_src/sequences.py`` (called by the linen modules in
``_src/cell.py``, ``_src/layer.py`` and ``_src/mingru_linen.py`` and the nnx
ones in ``_src/nnx.py`` and ``_src/mingru_nnx.py``), minGRU's maths in ``_src/mingru.py``, interop per
framework and export per format. Nothing under ``_src`` is promised to users.
"""

from importlib import metadata as _metadata

from jaxgru import export as export
from jaxgru import gates as gates
from jaxgru import interop as interop
from jaxgru import mingru as mingru
from jaxgru import nnx as nnx
from jaxgru._src.cell import GRUCell as GRUCell
from jaxgru._src.dispatch import Implementation as Implementation
from jaxgru._src.dispatch import resolve_implementation as resolve_implementation
from jaxgru._src.gates import Variant as Variant
from jaxgru._src.gates import gru_step as gru_step
from jaxgru._src.layer import GRU as GRU
from jaxgru._src.mingru_linen import MinGRU as MinGRU
from jaxgru._src.pallas_gru import gru_scan_pallas as gru_scan_pallas
from jaxgru._src.request import Remat as Remat
from jaxgru._src.scan import gru_scan as gru_scan
from jaxgru._src.scan import gru_scan_remat as gru_scan_remat
from jaxgru._src.sequences import gru_stack as gru_stack
from jaxgru._src.sequences import param_name as param_name

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
  "export",
  "gates",
  "gru_scan",
  "gru_scan_pallas",
  "gru_scan_remat",
  "gru_stack",
  "gru_step",
  "interop",
  "mingru",
  "nnx",
  "param_name",
  "resolve_implementation",
)
