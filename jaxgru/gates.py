"""The gate equations as pure functions, and one GRU step.

This module holds only the public names; the implementation is in ``jaxgru._src.gates``.
"""

from jaxgru._src.gates import PARAM_NAMES as PARAM_NAMES
from jaxgru._src.gates import Variant as Variant
from jaxgru._src.gates import candidate_state as candidate_state
from jaxgru._src.gates import gru_step as gru_step
from jaxgru._src.gates import input_projection as input_projection
from jaxgru._src.gates import new_hidden_state as new_hidden_state
from jaxgru._src.gates import reset_gate as reset_gate
from jaxgru._src.gates import update_gate as update_gate

__all__ = (
  "PARAM_NAMES",
  "Variant",
  "candidate_state",
  "gru_step",
  "input_projection",
  "new_hidden_state",
  "reset_gate",
  "update_gate",
)
