"""The one place that chooses how a GRU direction runs, and the one place that runs it.

:func:`resolve_implementation` turns a request (implementation, backend, H,
dtype, remat, recurrent dropout) into a concrete :class:`Implementation`;
:func:`run_direction` calls its runner. Every runner executes the same step,
:func:`jaxgru.gates.step`, and the same padding rule. Measured speeds behind
the ``AUTO`` policy are in ``experiments/results/`` (linked from docs/performance.md).
"""

from __future__ import annotations

import enum

import jax
import jax.numpy as jnp

from jaxgru._src import backward
from jaxgru._src import gates
from jaxgru._src import request
from jaxgru._src import scan

Array = jax.Array


class Implementation(str, enum.Enum):
  """How :class:`jaxgru.GRU` runs the recurrence; all give the same numbers.

  * ``AUTO``: chosen by :func:`resolve_implementation`.
  * ``SCAN``: ``lax.scan`` differentiated by JAX (:func:`jaxgru.gru_scan`);
    the only one with forward-mode derivatives (``jax.jvp``, ``jax.hessian``),
    recurrent dropout and rematerialisation (:func:`jaxgru.gru_scan_remat`).
  * ``CUSTOM_VJP``: the input projection of all steps as one product before
    the loop, and a hand-written backward pass
    (``implementation="custom_vjp"``).
  * ``CUSTOM_VJP_IN_LOOP``: the same backward, each step's input projected
    inside the loop, so no ``[T, B, 3H]`` array is stored
    (``implementation="custom_vjp_in_loop"``).
  * ``PALLAS``: the forward loop as one persistent Pallas kernel on a GPU, with
    the hand-written backward (:func:`jaxgru.gru_scan_pallas`); not
    yet measured on GPU hardware, so only ever an explicit choice.
  """

  AUTO = "auto"
  SCAN = "scan"
  CUSTOM_VJP = "custom_vjp"
  CUSTOM_VJP_IN_LOOP = "custom_vjp_in_loop"
  PALLAS = "pallas"


def as_implementation(implementation: str | Implementation) -> Implementation:
  """Returns ``implementation`` as an :class:`Implementation`, raising ``ValueError`` if unknown."""
  return gates.as_choice(Implementation, implementation, "GRU implementation")


def custom_gates(gate_fn=jax.nn.sigmoid, activation_fn=jnp.tanh) -> bool:
  """Whether a GRU's activations differ from sigmoid and tanh, the two the hand-written backward passes assume.

  >>> custom_gates(jax.nn.sigmoid, jnp.tanh), custom_gates(jax.nn.hard_sigmoid, jnp.tanh)
  (False, True)
  """
  return gate_fn is not jax.nn.sigmoid or activation_fn is not jnp.tanh


def check_compatible(
  implementation: str | Implementation,
  *,
  hidden: int | None = None,
  remat: str | request.Remat = request.Remat.NONE,
  recurrent_dropout: bool = False,
  custom_gates: bool = False,
) -> Implementation:
  """Checks that an implementation can serve a layer's options, wherever it will run; returns it as an enum.

  What only the scan takes (remat, recurrent dropout, activations other than
  sigmoid and tanh) and what the Pallas kernel cannot take (an ``H`` that is
  not a power of two in ``[16, 512]``) fail here, at construction; the
  backend is checked when the layer runs (:func:`resolve_implementation`).

  >>> check_compatible("custom_vjp", remat="step")
  Traceback (most recent call last):
  ...
  ValueError: remat='step' needs implementation 'scan' (or 'auto'), got 'custom_vjp'
  """
  implementation = as_implementation(implementation)
  remat = request.as_remat(remat)
  needs_scan = [f"remat={remat.value!r}"] if remat is not request.Remat.NONE else []
  if recurrent_dropout:
    needs_scan.append("recurrent_dropout")
  if custom_gates:
    needs_scan.append("a gate_fn or activation_fn other than sigmoid and tanh")
  if needs_scan and implementation not in (Implementation.AUTO, Implementation.SCAN):
    raise ValueError(
      f"{' and '.join(needs_scan)} needs implementation 'scan' (or 'auto'), got {implementation.value!r}"
    )
  if implementation is Implementation.PALLAS and hidden is not None:
    from jaxgru._src import pallas_gru  # noqa: PLC0415 - the module only; Pallas itself loads on first kernel build

    pallas_gru.check_hidden(hidden)
  return implementation


def resolve_implementation(
  implementation: str | Implementation,
  *,
  backend: str | None = None,
  hidden: int | None = None,
  remat: str | request.Remat = request.Remat.NONE,
  recurrent_dropout: bool = False,
  custom_gates: bool = False,
  interpret: bool = False,
) -> Implementation:
  """Turns a request into the concrete implementation that serves it, on ``backend``.

  >>> resolve_implementation("auto", backend="cpu").value, resolve_implementation("auto", backend="gpu").value
  ('custom_vjp_in_loop', 'custom_vjp')

  ``AUTO`` is ``SCAN`` when remat, recurrent dropout or activations other
  than sigmoid and tanh are asked for (only the scan takes them; the
  hand-written backward passes differentiate sigmoid and tanh); otherwise
  ``CUSTOM_VJP_IN_LOOP`` on a CPU (fastest there at every measured shape) and
  ``CUSTOM_VJP`` elsewhere (one large input projection and one product per
  backward step, what pays where each loop step costs kernel launches). An
  explicit choice is returned as it is, or refused with the reason and what
  would serve (:func:`check_compatible`).

  Args:
    implementation: the request.
    backend: ``"cpu"``, ``"gpu"``, ``"tpu"``; ``None`` asks JAX.
    hidden: H, when known (the Pallas kernel takes only some).
    remat: the layer's :class:`jaxgru.Remat` setting.
    recurrent_dropout: whether a recurrent-dropout mask will be applied.
    custom_gates: whether ``gate_fn`` or ``activation_fn`` differ from
      sigmoid and tanh (:func:`custom_gates`).
    interpret: ``PALLAS`` runs in the Pallas interpreter, on any backend.

  Raises:
    ValueError: an explicit choice that cannot serve the request.
  """
  implementation = check_compatible(  # the interpreter takes any H
    implementation,
    hidden=None if interpret else hidden,
    remat=remat,
    recurrent_dropout=recurrent_dropout,
    custom_gates=custom_gates,
  )
  backend = backend or jax.default_backend()
  if implementation is Implementation.AUTO:
    if request.as_remat(remat) is not request.Remat.NONE or recurrent_dropout or custom_gates:
      return Implementation.SCAN
    return Implementation.CUSTOM_VJP_IN_LOOP if backend == "cpu" else Implementation.CUSTOM_VJP
  if implementation is Implementation.PALLAS and not interpret:
    from jaxgru._src import pallas_gru  # noqa: PLC0415 - the module only; Pallas itself loads on first kernel build

    pallas_gru.check_compiled_kernel(backend, hidden)
  return implementation


def run_direction(
  implementation: str | Implementation,
  params: gates.Params,
  x: Array,
  h0: Array,
  *,
  variant: str | gates.Variant = gates.Variant.RESET_AFTER,
  seq_lengths: Array | None = None,
  reverse: bool = False,
  unroll: int = 1,
  dtype=None,
  resets: Array | None = None,
  reset_carry: Array | None = None,
  recurrent_mask: Array | None = None,
  remat: str | request.Remat = request.Remat.NONE,
  remat_segment: int | None = None,
  gate_fn=jax.nn.sigmoid,
  activation_fn=jnp.tanh,
  interpret: bool = False,
) -> tuple[Array, Array]:
  """Runs one layer direction on inputs ``x [T, B, I]`` with the implementation that serves the request.

  The whole run path: the arguments are checked, the padding zeroed and the
  compute dtype decided once (:func:`jaxgru._src.request.prepare_direction`), the
  implementation resolved on this backend, the inputs projected once where
  the implementation wants them projected, and its runner called.

  Args:
    implementation: as :func:`resolve_implementation` takes it.
    params: the direction's four parameter arrays.
    x: ``[T, B, I]`` inputs.
    h0: ``[B, H]`` initial state (carry dtype).
    variant, seq_lengths, reverse, unroll, dtype, resets, reset_carry,
      recurrent_mask: as :func:`jaxgru.gru_scan` (every implementation takes
      episode resets, through the one loop or the kernel's copy of its body).
    remat, remat_segment: as :func:`jaxgru.gru_scan_remat`.
    gate_fn, activation_fn: as :func:`jaxgru.gru_scan`; others than sigmoid
      and tanh need the scan (:func:`custom_gates`).
    interpret: run ``"pallas"`` in the Pallas interpreter (tests, any backend).

  Returns:
    ``(outputs [T, B, H], h_last [B, H])`` as :func:`jaxgru.gru_scan`.
  """
  d = request.prepare_direction(
    params,
    x,
    h0,
    projected=False,
    variant=variant,
    seq_lengths=seq_lengths,
    reverse=reverse,
    unroll=unroll,
    dtype=dtype,
    resets=resets,
    reset_carry=reset_carry,
    recurrent_mask=recurrent_mask,
    remat=remat,
    remat_segment=remat_segment,
    gate_fn=gate_fn,
    activation_fn=activation_fn,
  )
  implementation = resolve_implementation(
    implementation,
    hidden=d.h0.shape[-1],
    remat=d.remat,
    recurrent_dropout=recurrent_mask is not None,
    custom_gates=custom_gates(gate_fn, activation_fn),
    interpret=interpret,
  )
  if implementation is Implementation.CUSTOM_VJP_IN_LOOP:
    return backward.run_custom_vjp(d)
  if implementation is Implementation.SCAN and d.remat is not request.Remat.NONE:
    return scan.run_remat(d)
  d = d._replace(
    x=gates.input_projection(params, d.x, d.dtype), projected=True
  )  # [T, B, 3H]: the one hoisted projection
  if implementation is Implementation.SCAN:
    return scan.run_scan(d)
  if implementation is Implementation.CUSTOM_VJP:
    return backward.run_custom_vjp(d)
  from jaxgru._src import pallas_gru  # noqa: PLC0415 - Pallas is loaded only when asked for

  return pallas_gru.run_pallas(d, interpret=interpret)
