"""Layer options for training: recurrent dropout, remat (gradients and memory), bfloat16 compute and dtype checks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgru
from layer_options_helpers import B
from layer_options_helpers import H
from layer_options_helpers import I
from layer_options_helpers import inputs as _inputs
from layer_options_helpers import random_variables as _random_variables

# ---------------------------------------------------------------- recurrent dropout


def _mask_revealing_params(features):
  """Parameters for which h_t = tanh(x_t + m * h_{t-1}) exactly enough to read the mask m back.

  r = sigmoid(+30) = 1 and z = sigmoid(-30) ~ 1e-13, with identity W_in and W_hn.
  """
  eye, zeros = np.eye(features, dtype=np.float32), np.zeros((features, features), np.float32)
  bias = np.concatenate([np.full(features, 30.0), np.full(features, -30.0), np.zeros(features)])
  return {
    "input_kernel": jnp.asarray(np.concatenate([zeros, zeros, eye], axis=1)),
    "recurrent_kernel": jnp.asarray(np.concatenate([zeros, zeros, eye], axis=1)),
    "input_bias": jnp.asarray(bias, jnp.float32),
    "recurrent_bias": jnp.zeros(3 * features, jnp.float32),
  }


def _recover_masks(x, y, features):
  """Reads each step's recurrent mask back from the outputs: m_t = (atanh(h_t) - x_t) / h_{t-1}.

  Returns ``[B, T-1, H]`` masks for the forward direction and the reverse one.
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  fwd, bwd = y[..., :features], y[..., features:]
  m_fwd = (np.arctanh(fwd[:, 1:]) - x[:, 1:]) / fwd[:, :-1]
  m_bwd = (np.arctanh(bwd[:, :-1]) - x[:, :-1]) / bwd[:, 1:]
  return m_fwd, m_bwd


def test_recurrent_dropout_mask_is_constant_in_time_and_differs_across_sequences():
  batch, steps, features, rate = 4, 12, 16, 0.5
  layer = jaxgru.GRU(features=features, bidirectional=True, recurrent_dropout=rate)
  x = 0.5 + 0.1 * _inputs(0, (batch, steps, features))  # keeps h in (0.2, 1): m is readable
  params = _mask_revealing_params(features)
  variables = {"params": {"layer_0": params, "layer_0_reverse": params}}
  y, _ = layer.apply(variables, x, deterministic=False, rngs={"recurrent_dropout": jax.random.key(7)})
  m_fwd, m_bwd = _recover_masks(x, y, features)

  scale = 1.0 / (1.0 - rate)
  for masks in (m_fwd, m_bwd):
    # Every recovered entry is 0 (dropped) or 1/(1-p) (kept, inverted-dropout scaling).
    np.testing.assert_allclose(np.minimum(np.abs(masks), np.abs(masks - scale)), 0.0, atol=1e-3)
    # The same mask at every step of a sequence.
    np.testing.assert_allclose(masks.max(axis=1) - masks.min(axis=1), 0.0, atol=2e-3)
  per_sequence = np.round(m_fwd[:, 0] / scale).astype(int)  # [B, H] of 0/1
  assert len({tuple(row) for row in per_sequence}) == batch, "each sequence should get its own mask"
  assert 0.2 < per_sequence.mean() < 0.8, per_sequence.mean()
  # Each direction draws its own mask.
  assert not np.array_equal(per_sequence, np.round(m_bwd[:, 0] / scale).astype(int))

  y_other, _ = layer.apply(variables, x, deterministic=False, rngs={"recurrent_dropout": jax.random.key(8)})
  assert not np.allclose(y_other, y)


def test_recurrent_dropout_off_gives_exactly_the_plain_outputs():
  x = _inputs(1, (B, 9, I))
  plain = jaxgru.GRU(features=H, num_layers=2)
  variables = _random_variables(plain, x)
  y_ref, h_ref = jax.jit(plain.apply)(variables, x)
  rngs = {"recurrent_dropout": jax.random.key(3)}
  for layer, deterministic in [
    (jaxgru.GRU(features=H, num_layers=2, recurrent_dropout=0.0), False),
    (jaxgru.GRU(features=H, num_layers=2, recurrent_dropout=0.3), True),
  ]:
    y, h = jax.jit(layer.apply, static_argnames="deterministic")(variables, x, deterministic=deterministic, rngs=rngs)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(h, h_ref)
  y_drop, _ = jax.jit(
    jaxgru.GRU(features=H, num_layers=2, recurrent_dropout=0.3).apply, static_argnames="deterministic"
  )(variables, x, deterministic=False, rngs=rngs)
  assert y_drop.shape == y_ref.shape and y_drop.dtype == y_ref.dtype
  assert not np.allclose(y_drop, y_ref)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5])
def test_recurrent_dropout_rate_is_validated(bad):
  with pytest.raises(ValueError, match="recurrent_dropout must be in"):
    jaxgru.GRU(features=H, recurrent_dropout=bad)


# ---------------------------------------------------------------- remat


def _grads(layer, variables, x, seq_lengths=None, rngs=None):
  def loss(variables, x):
    y, h = layer.apply(variables, x, seq_lengths=seq_lengths, deterministic=rngs is None, rngs=rngs)
    return jnp.sum(y * jnp.cos(y)) + jnp.sum(h**2)

  return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(variables, x)


_REMAT_CASE = dict(features=H, num_layers=2, bidirectional=True, variant="reset_before")


@pytest.fixture(scope="module")
def remat_reference():
  """Inputs, variables and the plain path's loss and gradients, computed once."""
  steps = 24
  x = _inputs(2, (B, steps, I))
  lengths = jnp.array([steps, 13, 0])
  plain = jaxgru.GRU(**_REMAT_CASE)
  variables = _random_variables(plain, x)
  return x, lengths, variables, _grads(plain, variables, x, lengths)


@pytest.mark.parametrize(
  "remat",
  [
    {"remat": "step"},
    {"remat": "segments"},  # segment picked from T
    {"remat": "segments", "remat_segment": 6, "unroll": 3},
  ],
)
def test_remat_gradients_equal_the_plain_path(remat, remat_reference):
  x, lengths, variables, (loss_ref, grads_ref) = remat_reference
  loss, grads = _grads(jaxgru.GRU(**_REMAT_CASE, **remat), variables, x, lengths)
  # Identical maths; only the summation order of the input-projection and
  # weight-gradient products differs (per block instead of over all T).
  np.testing.assert_allclose(loss, loss_ref, rtol=1e-6)
  for got, want in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(grads_ref)):
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_remat_with_recurrent_dropout_uses_the_same_masks():
  x = _inputs(3, (B, 12, I))
  plain = jaxgru.GRU(features=H, recurrent_dropout=0.4)
  variables = _random_variables(plain, x)
  rngs = {"recurrent_dropout": jax.random.key(5)}
  loss_ref, grads_ref = _grads(plain, variables, x, rngs=rngs)
  loss, grads = _grads(
    jaxgru.GRU(features=H, recurrent_dropout=0.4, remat="segments", remat_segment=3), variables, x, rngs=rngs
  )
  np.testing.assert_allclose(loss, loss_ref, rtol=1e-6)
  for got, want in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(grads_ref)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _grad_temp_bytes(layer, variables, x):
  def loss(variables, x):
    return jnp.sum(layer.apply(variables, x)[0])

  compiled = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(variables, x).compile()
  return compiled.memory_analysis().temp_size_in_bytes


def test_remat_reduces_gradient_temporary_memory():
  x = _inputs(4, (2, 512, I))
  plain = jaxgru.GRU(features=16)
  variables = jax.jit(plain.init)(jax.random.key(0), x)
  base = _grad_temp_bytes(plain, variables, x)
  for remat in ("step", "segments"):
    temp = _grad_temp_bytes(jaxgru.GRU(features=16, remat=remat), variables, x)
    assert temp * 4 <= base, (remat, temp, base)


def test_remat_bad_combinations_raise():
  x = _inputs(5, (B, 10, I))
  with pytest.raises(ValueError, match="unknown remat mode 'all'"):
    jaxgru.GRU(features=H, remat="all")
  with pytest.raises(ValueError, match="needs remat='segments'"):
    jaxgru.GRU(features=H, remat="step", remat_segment=5)
  with pytest.raises(ValueError, match="multiple of unroll=3"):
    jaxgru.GRU(features=H, remat="segments", remat_segment=5, unroll=3)
  with pytest.raises(ValueError, match="positive integer"):
    jaxgru.GRU(features=H, remat="segments", remat_segment=0)
  layer = jaxgru.GRU(features=H, remat="segments", remat_segment=4)
  with pytest.raises(ValueError, match=r"remat_segment=4 must divide the sequence length T=10"):
    layer.init(jax.random.key(0), x)
  layer = jaxgru.GRU(features=H, remat="step", unroll=3)
  with pytest.raises(ValueError, match=r"unroll=3 steps, which must divide the sequence length T=10"):
    layer.init(jax.random.key(0), x)


# ---------------------------------------------------------------- bfloat16


def _relative_error(got, want):
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  return np.linalg.norm(got - want) / np.linalg.norm(want)


@pytest.mark.parametrize("variant", ["reset_after", "reset_before"])
def test_bfloat16_compute_stays_close_to_float32_with_a_float32_carry(variant):
  x = _inputs(6, (4, 48, 8))
  f32 = jaxgru.GRU(features=16, num_layers=2, variant=variant)
  variables = f32.init(jax.random.key(0), x)  # with large random recurrent weights a GRU is chaotic
  y_ref, h_ref = jax.jit(f32.apply)(variables, x)
  bf16 = jaxgru.GRU(features=16, num_layers=2, variant=variant, dtype=jnp.bfloat16)
  y, h = jax.jit(bf16.apply)(variables, x)
  assert y.dtype == jnp.float32 and h.dtype == jnp.float32  # carry and outputs stay float32
  # bfloat16 keeps 8 bits of mantissa (relative rounding 2^-9 ~ 0.2%); errors of the
  # gates add up over steps, but stay at the percent level.
  assert _relative_error(y, y_ref) < 2e-2
  assert _relative_error(h, h_ref) < 2e-2
  # The state handed between steps is not rounded to bfloat16: most outputs are
  # not representable in bfloat16 (all would be if the interpolation ran in it).
  rounded = np.asarray(y.astype(jnp.bfloat16).astype(jnp.float32))
  assert np.mean(rounded != np.asarray(y)) > 0.5


@pytest.mark.slow
def test_bfloat16_has_no_nan_or_overflow_over_ten_thousand_steps():
  x = _inputs(7, (2, 10_000, 4), scale=3.0)
  layer = jaxgru.GRU(features=8, dtype=jnp.bfloat16)
  variables = _random_variables(layer, x, scale=2.0)
  y, h = jax.jit(layer.apply)(variables, x)
  assert bool(jnp.all(jnp.isfinite(y))) and bool(jnp.all(jnp.isfinite(h)))
  assert float(jnp.max(jnp.abs(y))) <= 1.0  # a GRU state is a convex mix of tanh values
  # Saturated gates are where bfloat16 could go wrong: many gates sit at 0 or 1 here.
  assert float(jnp.mean(jnp.abs(y) > 0.99)) > 0.1


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.bool_])
def test_non_floating_dtype_raises(dtype):
  with pytest.raises(TypeError, match="floating dtype"):
    jaxgru.GRU(features=H, dtype=dtype)
  with pytest.raises(TypeError, match="floating dtype"):
    jaxgru.GRUCell(features=H, dtype=dtype)
  with pytest.raises(TypeError, match="floating dtype"):
    jaxgru.MinGRU(features=H, dtype=dtype)
