"""jaxgru's implementation: private, shared between jaxgru's modules, not promised to users.

The public API is declared in :mod:`jaxgru` and its public submodules
(:mod:`jaxgru.gates`, :mod:`jaxgru.nnx`, :mod:`jaxgru.mingru`,
:mod:`jaxgru.interop`, :mod:`jaxgru.export`), which hold only re-exports.
"""
