"""The options of the GRU layer and the GRU cell, declared and checked once for both Flax APIs.

:data:`GRU_OPTIONS` is the one list of a layer's options (read by
:class:`jaxgru.GRU`, :class:`jaxgru.nnx.GRU` and :mod:`jaxgru.interop`);
:func:`check_layer_options` and :func:`check_cell_options` are the checks
both APIs run at construction. Imports no Flax API.
"""

from __future__ import annotations

from jaxgru._src import dispatch
from jaxgru._src import gates
from jaxgru._src import request
from jaxgru._src import validation

# The options of a GRU layer besides its sizes and initializers, the same for
# jaxgru.GRU and jaxgru.nnx.GRU (what jaxgru.interop carries between them).
GRU_OPTIONS = (
  "num_layers",
  "bidirectional",
  "dropout",
  "variant",
  "unroll",
  "implementation",
  "time_major",
  "dtype",
  "param_dtype",
  "recurrent_dropout",
  "remat",
  "remat_segment",
  "use_bias",
  "gate_fn",
  "activation_fn",
)


def check_layer_options(
  owner: str,
  *,
  features: int,
  num_layers: int,
  bidirectional: bool,
  dropout: float,
  variant: str,
  unroll: int,
  implementation: str,
  time_major: bool,
  dtype,
  param_dtype,
  recurrent_dropout: float,
  remat: str,
  remat_segment: int | None,
  use_bias: bool,
  gate_fn,
  activation_fn,
) -> None:
  """Checks the options of a GRU layer (:class:`jaxgru.GRU`, :class:`jaxgru.nnx.GRU`) at construction.

  Args:
    owner: the class name for the messages (``"GRU"``).
    features, ...: the layer's options (see :class:`jaxgru.GRU`).

  Raises:
    ValueError, TypeError: naming the option, what it was and what was expected;
      also an explicit ``implementation`` that cannot serve the other options
      (:func:`jaxgru.resolve_implementation`).
  """
  gates.as_variant(variant)
  dispatch.as_implementation(implementation)
  for name, value in (("features", features), ("num_layers", num_layers), ("unroll", unroll)):
    validation.check_positive_int(f"{owner} {name}", value)
  validation.check_positive_int(f"{owner} remat_segment", remat_segment, allow_none=True)
  for name, value in (("bidirectional", bidirectional), ("time_major", time_major), ("use_bias", use_bias)):
    validation.check_bool(f"{owner} {name}", value)
  validation.check_rate(f"{owner} dropout", dropout)
  validation.check_rate(f"{owner} recurrent_dropout", recurrent_dropout)
  validation.check_callable(f"{owner} gate_fn", gate_fn)
  validation.check_callable(f"{owner} activation_fn", activation_fn)
  remat = request.as_remat(remat)
  if remat_segment is not None:
    if remat is not request.Remat.SEGMENTS:
      raise ValueError(f"{owner} remat_segment={remat_segment} needs remat='segments', got remat={remat.value!r}")
    if remat_segment % unroll:
      raise ValueError(f"{owner} remat_segment={remat_segment} must be a multiple of unroll={unroll}")
  # An explicit implementation that cannot serve these options fails here, at construction; the
  # backend is checked when the layer runs (a model may be built on one machine, run on another).
  dispatch.check_compatible(
    implementation,
    hidden=features,
    remat=remat,
    recurrent_dropout=bool(recurrent_dropout),
    custom_gates=dispatch.custom_gates(gate_fn, activation_fn),
  )
  validation.check_floating(f"{owner} dtype", dtype)
  validation.check_floating(f"{owner} param_dtype", param_dtype)


def check_cell_options(
  owner: str, sizes: dict[str, int], *, variant, dtype, param_dtype, use_bias, gate_fn, activation_fn
):
  """The option checks of both GRU cells (:class:`jaxgru.GRUCell`, :class:`jaxgru.nnx.GRUCell`); returns the :class:`Variant`.

  Args:
    owner: the class name for the messages.
    sizes: ``{"features": H}`` or ``{"in_features": I, "hidden_features": H}``.
    variant, dtype, param_dtype, use_bias, gate_fn, activation_fn: the cell's options.

  Raises:
    ValueError, TypeError: naming the option, what it was and what was expected.
  """
  for name, value in sizes.items():
    validation.check_positive_int(f"{owner} {name}", value)
  validation.check_floating(f"{owner} dtype", dtype, allow_complex=True)
  validation.check_floating(f"{owner} param_dtype", param_dtype, allow_complex=True)
  validation.check_bool(f"{owner} use_bias", use_bias)
  validation.check_callable(f"{owner} gate_fn", gate_fn)
  validation.check_callable(f"{owner} activation_fn", activation_fn)
  return gates.as_variant(variant)
