"""minGRU (Feng et al., 2024): the step, the parallel scan and their choices; the modules are :class:`jaxgru.MinGRU` and :class:`jaxgru.nnx.MinGRU`.

This module holds only the public names; the implementation is in ``jaxgru._src.mingru``.
"""

from jaxgru._src.mingru import Candidate as Candidate
from jaxgru._src.mingru import Mode as Mode
from jaxgru._src.mingru import mingru_scan as mingru_scan
from jaxgru._src.mingru import mingru_step as mingru_step

__all__ = (
  "Candidate",
  "Mode",
  "mingru_scan",
  "mingru_step",
)
