r"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"): a GRU that trains in parallel over time.

The gates read only the input, never the previous state, so the recurrence is
linear in :math:`h` and runs as a parallel prefix scan:

.. math::

   z_t &= \sigma(W_z x_t + b_z) \\
   \tilde h_t &= W_h x_t + b_h \quad\text{(candidate="linear")} \qquad
   \tilde h_t = g(W_h x_t + b_h) \quad\text{(candidate="g")} \\
   h_t &= (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t
        = a_t \odot h_{t-1} + b_t

with :math:`g(v) = v + \tfrac12` for :math:`v \ge 0` and :math:`\sigma(v)`
otherwise, which keeps :math:`\tilde h_t > 0` so the scan can run in log space
(Feng et al. 2024, section 3.3 and appendix B).

Three modes compute the same function (shape legend as in :mod:`jaxgru.gates`):

* ``"parallel"``: ``jax.lax.associative_scan`` over the pairs :math:`(a_t, b_t)`,
  :math:`O(\log T)` depth.
* ``"log"``: the same scan over :math:`(\log a_t, \log b_t)` combined with
  ``logaddexp``, the paper's log-space form for long sequences; needs
  ``candidate="g"``.
* ``"sequential"``: ``jax.lax.scan``, one step at a time, as in streaming
  inference (see :func:`mingru_step` for a single step).

Parameters of one layer: ``kernel [I, 2H]`` :math:`= [W_z | W_h]` and
``bias [2H]`` :math:`= [b_z | b_h]`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import jax
import jax.numpy as jnp

from jaxgru._src import dtypes
from jaxgru._src import gates
from jaxgru._src import request
from jaxgru._src import sequences
from jaxgru._src import validation

Array = jax.Array
Params = Mapping[str, Array]

# log(b) of a padded step: exp() of it is exactly 0 and logaddexp(x, it) is
# exactly x, while staying finite so that gradients stay finite too.
_LOG_ZERO = -1e30


class Mode(str, enum.Enum):
  """How :class:`jaxgru.MinGRU` runs the recurrence over time; all give the same numbers."""

  PARALLEL = "parallel"  # associative scan over (a, b)
  LOG = "log"  # associative scan over (log a, log b), Feng et al. 2024 sec. 3.3
  SEQUENTIAL = "sequential"  # lax.scan, one step at a time


class Candidate(str, enum.Enum):
  """The candidate state :math:`\\tilde h_t` of :class:`jaxgru.MinGRU`."""

  LINEAR = "linear"  # W_h x + b_h
  G = "g"  # g(W_h x + b_h) > 0, needed by the log-space mode


def as_mode(mode: str | Mode) -> Mode:
  """Returns ``mode`` as a :class:`Mode`, raising ``ValueError`` if unknown."""
  return gates.as_choice(Mode, mode, "minGRU mode")


def as_candidate(candidate: str | Candidate) -> Candidate:
  """Returns ``candidate`` as a :class:`Candidate`, raising ``ValueError`` if unknown."""
  return gates.as_choice(Candidate, candidate, "minGRU candidate")


def g(v: Array) -> Array:
  r"""The paper's positive activation :math:`g(v) = v + 1/2` for :math:`v \ge 0`, else :math:`\sigma(v)`.

  >>> g(jnp.array([-100.0, 0.0, 2.0]))
  Array([0. , 0.5, 2.5], dtype=float32)
  """
  return jnp.where(v >= 0, v + 0.5, jax.nn.sigmoid(v))  # Feng et al. 2024, appendix B


def log_g(v: Array) -> Array:
  r""":math:`\log g(v)`, computed without forming :math:`g(v)` for negative ``v``.

  >>> bool(jnp.allclose(log_g(jnp.array([-3.0, 1.0])), jnp.log(g(jnp.array([-3.0, 1.0])))))
  True
  """
  # relu() keeps the unused branch finite so that its gradient is not NaN.
  return jnp.where(v >= 0, jnp.log(jax.nn.relu(v) + 0.5), -jax.nn.softplus(-v))


def projection(params: Params, x: Array, dtype=None) -> Array:
  """Both input projections at once, :math:`[W_z x + b_z \\,|\\, W_h x + b_h]`.

  Args:
    params: ``{"kernel": [I, 2H], "bias": [2H]}``.
    x: ``[..., I]`` inputs.
    dtype: compute dtype (``None``: promote ``x`` and the parameters).

  Returns:
    ``[..., 2H]`` projections.
  """
  w, b = params["kernel"], params["bias"]
  dtype = dtypes.compute_dtype(dtype, x, w)
  return gates.add_bias(jnp.matmul(x.astype(dtype), w.astype(dtype)), b.astype(dtype))


def coefficients(proj: Array, candidate: str | Candidate, dtype) -> tuple[Array, Array]:
  r"""The linear recurrence :math:`h_t = a_t h_{t-1} + b_t`: :math:`a = 1 - z`, :math:`b = z \tilde h`.

  Args:
    proj: ``[..., 2H]`` from :func:`projection`.
    candidate: ``"linear"`` or ``"g"``.
    dtype: dtype of the result (the carry dtype).

  Returns:
    ``(a, b)``, each ``[..., H]``.
  """
  k, v = jnp.split(proj.astype(dtype), 2, axis=-1)
  z = jax.nn.sigmoid(k)
  h_tilde = g(v) if as_candidate(candidate) is Candidate.G else v
  return 1.0 - z, z * h_tilde


def log_coefficients(proj: Array, dtype) -> tuple[Array, Array]:
  r""":math:`(\log a_t, \log b_t)` for ``candidate="g"``: :math:`\log(1-z) = -\mathrm{softplus}(k)`,
  :math:`\log z + \log g(v) = -\mathrm{softplus}(-k) + \log g(v)`.

  Args:
    proj: ``[..., 2H]`` from :func:`projection`.
    dtype: dtype of the result (the carry dtype).

  Returns:
    ``(log_a, log_b)``, each ``[..., H]``.
  """
  k, v = jnp.split(proj.astype(dtype), 2, axis=-1)
  return -jax.nn.softplus(k), -jax.nn.softplus(-k) + log_g(v)  # Feng et al. 2024, appendix B


def mingru_step(params: Params, h: Array, x: Array, candidate: str | Candidate = Candidate.LINEAR, dtype=None) -> Array:
  r"""One minGRU step, :math:`h' = (1 - z) \odot h + z \odot \tilde h`: streaming inference.

  Args:
    params: ``{"kernel": [I, 2H], "bias": [2H]}``.
    h: ``[..., H]`` previous state (its dtype is the carry dtype).
    x: ``[..., I]`` input at this step.
    candidate: ``"linear"`` or ``"g"``.
    dtype: compute dtype of the projection (``None``: promote).

  Returns:
    ``[..., H]`` the new state, dtype of ``h``.

  >>> p = {"kernel": jnp.zeros((2, 6)), "bias": jnp.concatenate([jnp.zeros(3), jnp.ones(3)])}
  >>> mingru_step(p, jnp.zeros(3), jnp.ones(2))  # z = 1/2, candidate 1
  Array([0.5, 0.5, 0.5], dtype=float32)
  """
  a, b = coefficients(projection(params, x, dtype), candidate, h.dtype)
  return a * h + b


def _compose(earlier, later):
  """Composition of the affine maps ``h -> a h + b``: ``later`` after ``earlier``."""
  a1, b1 = earlier
  a2, b2 = later
  return a1 * a2, a2 * b1 + b2


def _compose_log(earlier, later):
  """:func:`_compose` in log space: ``h -> exp(la) h + exp(lb)``."""
  la1, lb1 = earlier
  la2, lb2 = later
  return la1 + la2, jnp.logaddexp(la2 + lb1, lb2)


def mingru_scan(
  params: Params,
  x: Array,
  h0: Array,
  *,
  mode: str | Mode = Mode.PARALLEL,
  candidate: str | Candidate = Candidate.LINEAR,
  seq_lengths: Array | None = None,
  dtype=None,
  resets: Array | None = None,
  reset_carry: Array | None = None,
) -> tuple[Array, Array]:
  r"""Runs one minGRU layer over a time-major sequence.

  With ``seq_lengths``, steps ``t >= seq_lengths[b]`` output zeros and leave
  the state unchanged (their map is the identity, :math:`a = 1, b = 0`), so the
  final state is the one after each sequence's last valid step.

  Args:
    params: ``{"kernel": [I, 2H], "bias": [2H]}``.
    x: ``[T, B, I]`` inputs.
    h0: ``[B, H]`` initial state; its dtype is the carry dtype (any sign, also
      in log mode: :math:`h_t = e^{A_t} h_0 + e^{B_t}` keeps :math:`h_0` out of the logs).
    mode: ``"parallel"``, ``"log"`` or ``"sequential"``.
    candidate: ``"linear"`` or ``"g"``; ``"log"`` needs ``"g"``.
    seq_lengths: optional ``[B]`` integer lengths in ``[0, T]``.
    dtype: compute dtype of the projection; the scan runs in the carry dtype.
    resets: optional ``[T, B]`` booleans, true where an episode starts: step
      ``t`` reads ``reset_carry`` instead of :math:`h_{t-1}`, so its
      coefficient :math:`a_t` becomes 0 (no gradient reaches earlier steps)
      and :math:`b_t` gains :math:`a_t h_r`. Resets at padded steps are ignored.
    reset_carry: optional ``[B, H]`` state a reset restores; ``h0`` by default.

  Returns:
    ``(outputs [T, B, H], h_last [B, H])``, both in the carry dtype.

  Raises:
    ValueError: ``mode="log"`` with ``candidate="linear"``.

  >>> p = {"kernel": jnp.full((2, 6), 0.3), "bias": jnp.zeros(6)}
  >>> x, h0 = jnp.ones((16, 1, 2)), jnp.zeros((1, 3))  # [T, B, I], [B, H]
  >>> outs = [mingru_scan(p, x, h0, mode=m, candidate="g")[0] for m in ("parallel", "log", "sequential")]
  >>> bool(jnp.allclose(outs[0], outs[1], atol=1e-6) and jnp.allclose(outs[0], outs[2], atol=1e-6))
  True
  """
  mode, candidate = as_mode(mode), as_candidate(candidate)
  if mode is Mode.LOG and candidate is not Candidate.G:
    raise ValueError("minGRU mode='log' needs candidate='g' (positive candidate states); got candidate='linear'")
  x = validation.check_array("x", x, rank=3, legend="[T, B, I]")
  h0 = validation.check_array("h0", h0, rank=2, legend="[B, H]")
  num_steps = x.shape[0]
  carry_dtype = h0.dtype
  valid = None
  if seq_lengths is not None:
    seq_lengths = validation.check_seq_lengths(seq_lengths, x.shape[1], num_steps)
    x, valid = request.zero_padding(x, seq_lengths)  # valid: [T, B, 1]; padding reaches neither outputs nor gradients
  proj = projection(params, x, dtype)  # [T, B, 2H]
  restart, h_reset = request.prepare_resets(resets, reset_carry, h0, seq_lengths, False, num_steps=num_steps)
  if restart is not None:
    restart = restart[..., None]  # [T, B, 1]

  if mode is Mode.LOG:
    log_a, log_b = log_coefficients(proj, carry_dtype)  # [T, B, H] x2
    if valid is not None:
      log_a, log_b = jnp.where(valid, log_a, 0.0), jnp.where(valid, log_b, _LOG_ZERO)
    if restart is not None:  # h_r of any sign stays out of the logs: its weight is a third scan
      log_w = jnp.where(restart, log_a, _LOG_ZERO)  # a_t where step t restarts
      log_a = jnp.where(restart, _LOG_ZERO, log_a)
    log_a_cum, log_b_cum = jax.lax.associative_scan(_compose_log, (log_a, log_b), axis=0)
    ys = jnp.exp(log_a_cum) * h0[None] + jnp.exp(log_b_cum)  # [T, B, H]
    if restart is not None:
      _, log_w_cum = jax.lax.associative_scan(_compose_log, (log_a, log_w), axis=0)
      ys = ys + jnp.exp(log_w_cum) * h_reset[None]
  else:
    a, b = coefficients(proj, candidate, carry_dtype)  # [T, B, H] x2
    if valid is not None:
      a, b = jnp.where(valid, a, 1.0), jnp.where(valid, b, 0.0)
    if restart is not None:  # h_t = a_t h_r + b_t: the chain to earlier steps is cut
      a, b = jnp.where(restart, 0.0, a), jnp.where(restart, b + a * h_reset[None], b)
    if mode is Mode.PARALLEL:
      a_cum, b_cum = jax.lax.associative_scan(_compose, (a, b), axis=0)
      ys = a_cum * h0[None] + b_cum
    else:
      _, ys = jax.lax.scan(lambda h, ab: (ab[0] * h + ab[1],) * 2, h0, (a, b))
  h_last = ys[-1] if num_steps else h0
  if valid is not None:
    ys = jnp.where(valid, ys, jnp.zeros_like(ys))
  return ys, h_last


def check_options(
  owner: str, *, features, num_layers, mode, candidate, dropout, time_major, dtype, param_dtype
) -> None:
  """Checks the options of a minGRU layer (:class:`jaxgru.MinGRU`, :class:`jaxgru.nnx.MinGRU`); raises naming the option."""
  if (as_mode(mode), as_candidate(candidate)) == (Mode.LOG, Candidate.LINEAR):
    raise ValueError(
      f"{owner} mode='log' needs candidate='g' (the log-space scan needs positive candidate "
      f"states, Feng et al. 2024 sec. 3.3); got candidate={candidate!r}"
    )
  for name, value in (("features", features), ("num_layers", num_layers)):
    validation.check_positive_int(f"{owner} {name}", value)
  validation.check_bool(f"{owner} time_major", time_major)
  validation.check_rate(f"{owner} dropout", dropout)
  validation.check_floating(f"{owner} dtype", dtype)
  validation.check_floating(f"{owner} param_dtype", param_dtype)


def mingru_layer(
  obtain_params,
  inputs,
  *,
  features: int,
  options: Mapping,
  keys: sequences.LayerKeys,
  expected_input_features: int | None,
  seq_lengths=None,
  initial_carry=None,
  resets=None,
  reset_carry=None,
) -> tuple[Array, Array]:
  """Runs a minGRU layer (:class:`jaxgru.MinGRU`, :class:`jaxgru.nnx.MinGRU`) from its parameters and keys.

  As :func:`jaxgru._src.sequences.gru_layer`, with ``params[l] = [{"kernel": [I_l, 2H], "bias": [2H]}]``,
  the :data:`OPTION_NAMES` options and ``keys.dropout`` only. Returns ``(outputs [B, T, H],
  final_carry [L, B, H])`` in the caller's layout.
  """

  def run(params, batch, between):
    def scan(layer, _d, p, x, h):
      return mingru_scan(
        p,
        x,
        h,
        mode=options["mode"],
        candidate=options["candidate"],
        seq_lengths=batch.seq_lengths,
        dtype=options["dtype"],
        resets=batch.resets,
        reset_carry=None if batch.reset_carry is None else batch.reset_carry[layer],
      )

    return sequences.run_stack(scan, params, batch.x, batch.h0, between_layers=between)  # [T, B, H], [L, B, H]

  return sequences.sequence_layer(
    "MinGRU",
    inputs,
    obtain_params=obtain_params,
    run=run,
    features=features,
    num_layers=options["num_layers"],
    num_directions=1,
    directional=False,
    time_major=options["time_major"],
    param_dtype=options["param_dtype"],
    dropout_rate=options["dropout"],
    keys=keys,
    expected_input_features=expected_input_features,
    seq_lengths=seq_lengths,
    initial_carry=initial_carry,
    resets=resets,
    reset_carry=reset_carry,
  )


OPTION_NAMES = ("num_layers", "mode", "candidate", "dropout", "time_major", "dtype", "param_dtype")
