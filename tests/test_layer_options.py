"""Layer options beyond the peers: recurrent dropout, remat, bfloat16, streaming, Keras weights."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgru
from jaxgru._src import params as params_lib
from jaxgru import interop
from jaxgru._src import scan

B, I, H = 3, 4, 5


def _inputs(key, shape, scale=1.0):
  return scale * jax.random.normal(jax.random.key(key), shape, jnp.float32)


def _random_variables(layer, x, key=0, scale=0.5):
  """Variables of ``layer`` with all parameters (biases too) drawn at random."""
  variables = jax.jit(layer.init)(jax.random.key(key), x)
  leaves, treedef = jax.tree_util.tree_flatten(variables)
  keys = jax.random.split(jax.random.key(key + 1), len(leaves))
  leaves = [scale * jax.random.normal(k, leaf.shape, leaf.dtype) for k, leaf in zip(keys, leaves)]
  return jax.tree_util.tree_unflatten(treedef, leaves)


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
    y, h = jax.jit(layer.apply, static_argnames="deterministic")(
        variables, x, deterministic=deterministic, rngs=rngs
    )
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(h, h_ref)
  y_drop, _ = jax.jit(jaxgru.GRU(features=H, num_layers=2, recurrent_dropout=0.3).apply, static_argnames="deterministic")(
      variables, x, deterministic=False, rngs=rngs
  )
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
  loss, grads = _grads(jaxgru.GRU(features=H, recurrent_dropout=0.4, remat="segments", remat_segment=3),
                       variables, x, rngs=rngs)
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


# ---------------------------------------------------------------- streaming

# Streaming runs the same operations as the whole-sequence call, but XLA fuses a
# one-step call differently from a T-step loop, so results agree to float32
# rounding rather than bit for bit.
_STREAM_TOL = dict(rtol=0, atol=2e-6)


@pytest.mark.parametrize("chunk", [1, 4])
def test_gru_streaming_matches_the_whole_sequence(chunk):
  steps = 12
  layer = jaxgru.GRU(features=H, num_layers=2)
  x = _inputs(8, (B, steps, I))
  variables = _random_variables(layer, x)
  apply = jax.jit(lambda x, carry: layer.apply(variables, x, initial_carry=carry))
  y_ref, h_ref = apply(x, jnp.zeros((2, B, H)))
  carry, outputs = jnp.zeros((2, B, H)), []
  for start in range(0, steps, chunk):
    y, carry = apply(x[:, start : start + chunk], carry)
    outputs.append(y)
  np.testing.assert_allclose(jnp.concatenate(outputs, axis=1), y_ref, **_STREAM_TOL)
  np.testing.assert_allclose(carry, h_ref, **_STREAM_TOL)


def test_cell_and_pure_step_streaming_match_the_layer():
  steps = 10
  layer = jaxgru.GRU(features=H)
  x = _inputs(9, (B, steps, I))
  variables = _random_variables(layer, x)
  y_ref, _ = layer.apply(variables, x)
  cell_params = variables["params"]["layer_0"]
  cell = jaxgru.GRUCell(features=H)
  step = jax.jit(lambda h, x_t: cell.apply({"params": cell_params}, h, x_t))
  h_cell = h_pure = jnp.zeros((B, H))
  for t in range(steps):
    h_cell, y_t = step(h_cell, x[:, t])
    h_pure = jaxgru.gru_step(cell_params, h_pure, x[:, t])
    np.testing.assert_allclose(y_t, y_ref[:, t], **_STREAM_TOL)
    np.testing.assert_allclose(h_pure, y_ref[:, t], **_STREAM_TOL)


def test_mingru_sequential_streaming_matches_the_whole_sequence():
  steps = 8
  rnn = jaxgru.MinGRU(features=H, num_layers=2, mode="sequential")
  x = _inputs(10, (B, steps, I))
  variables = _random_variables(rnn, x)
  apply = jax.jit(lambda x, carry: rnn.apply(variables, x, initial_carry=carry))
  y_ref, h_ref = apply(x, jnp.zeros((2, B, H)))
  carry, outputs = jnp.zeros((2, B, H)), []
  for t in range(steps):
    y, carry = apply(x[:, t : t + 1], carry)
    outputs.append(y)
  np.testing.assert_allclose(jnp.concatenate(outputs, axis=1), y_ref, **_STREAM_TOL)
  np.testing.assert_allclose(carry, h_ref, **_STREAM_TOL)


# ---------------------------------------------------------------- Keras


def _keras():
  os.environ["KERAS_BACKEND"] = "jax"  # keras reads this on import; its JAX backend needs no TensorFlow
  keras = pytest.importorskip("keras")
  if keras.backend.backend() != "jax":
    pytest.skip(f"keras was imported earlier with the {keras.backend.backend()!r} backend")
  return keras


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("use_bias", [True, False])
def test_from_keras_reproduces_keras(reset_after, use_bias):
  keras = _keras()
  keras_layer = keras.layers.GRU(
      H, return_sequences=True, return_state=True, reset_after=reset_after, use_bias=use_bias
  )
  x = np.asarray(_inputs(11, (B, 9, I)))
  # Keras' own JAX code relies on implicit rank and dtype promotion, which this suite forbids.
  with jax.numpy_rank_promotion("allow"), jax.numpy_dtype_promotion("standard"):
    keras_layer(x)  # builds the weights
    rng = np.random.default_rng(0)
    keras_layer.set_weights([rng.normal(scale=0.5, size=w.shape).astype(np.float32) for w in keras_layer.get_weights()])
    y_keras, h_keras = (np.asarray(a) for a in keras_layer(x))

  for source in (keras_layer, keras_layer.get_weights()):
    kwargs = {} if source is keras_layer or use_bias else {"reset_after": reset_after}
    layer, variables = interop.from_keras(source, **kwargs)
    assert layer.variant == ("reset_after" if reset_after else "reset_before")
    y, h = layer.apply(variables, x)
    np.testing.assert_allclose(y, y_keras, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h[0], h_keras, rtol=1e-5, atol=1e-6)
  # The cell parameters drive GRUCell / gru_step too.
  assert layer.use_bias == use_bias and ("input_bias" in variables["params"]["layer_0"]) == use_bias
  h1 = jaxgru.gru_step(params_lib.with_biases(variables["params"]["layer_0"]), jnp.zeros((B, H)), x[:, 0], layer.variant)
  np.testing.assert_allclose(h1, y_keras[:, 0], rtol=1e-5, atol=1e-6)


def test_from_keras_carries_recurrent_dropout_and_rejects_other_activations():
  keras = _keras()
  x = np.zeros((1, 2, I), np.float32)
  dropped = keras.layers.GRU(H, recurrent_dropout=0.25)
  relu = keras.layers.GRU(H, activation="relu")
  with jax.numpy_rank_promotion("allow"), jax.numpy_dtype_promotion("standard"):  # Keras' own code
    dropped(x)
    relu(x)
  layer, _ = interop.from_keras(dropped)
  assert layer.recurrent_dropout == 0.25
  with pytest.raises(ValueError, match="activation='tanh'"):
    interop.from_keras(relu)


def test_from_keras_refuses_input_dropout_and_carries_use_bias():
  keras = _keras()
  dropped = keras.layers.GRU(H, dropout=0.2)
  no_bias = keras.layers.GRU(H, use_bias=False)
  with jax.numpy_rank_promotion("allow"), jax.numpy_dtype_promotion("standard"):
    for keras_layer in (dropped, no_bias):
      keras_layer(np.zeros((B, 3, I), np.float32))
  with pytest.raises(ValueError, match=r"dropout=0.2 on its inputs.*convert layer.get_weights\(\) instead"):
    interop.from_keras(dropped)
  layer, _ = interop.from_keras(dropped.get_weights())  # the weights alone, as the message says
  assert layer.features == H
  layer, variables = interop.from_keras(no_bias)
  assert layer.use_bias is False and sorted(variables["params"]["layer_0"]) == ["input_kernel", "recurrent_kernel"]


def _keras_arrays(bias_shape=(2, 3 * H)):
  return {
      "kernel": np.zeros((I, 3 * H), np.float32),
      "recurrent_kernel": np.zeros((H, 3 * H), np.float32),
      "bias": np.zeros(bias_shape, np.float32),
  }


def test_from_keras_maps_gates_and_biases():
  # Distinct values per gate block show the z, r, h -> r, z, n reordering.
  arrays = _keras_arrays()
  arrays["kernel"][:] = np.repeat([1.0, 2.0, 3.0], H)  # z, r, h
  arrays["bias"][0] = np.repeat([10.0, 20.0, 30.0], H)
  arrays["bias"][1] = np.repeat([40.0, 50.0, 60.0], H)
  _, variables = interop.from_keras(arrays)
  p = variables["params"]["layer_0"]
  np.testing.assert_array_equal(p["input_kernel"][0], np.repeat([2.0, 1.0, 3.0], H))  # r, z, n
  np.testing.assert_array_equal(p["input_bias"], np.repeat([20.0, 10.0, 30.0], H))
  np.testing.assert_array_equal(p["recurrent_bias"], np.repeat([50.0, 40.0, 60.0], H))
  layer, variables = interop.from_keras(_keras_arrays((3 * H,)))
  assert layer.variant == "reset_before"
  np.testing.assert_array_equal(variables["params"]["layer_0"]["recurrent_bias"], np.zeros(3 * H))


def test_from_keras_bad_input_raises():
  with pytest.raises(TypeError, match="from_keras expects"):
    interop.from_keras("weights.h5")
  with pytest.raises(ValueError, match="list of 4 arrays"):
    interop.from_keras([np.zeros(1)] * 4)
  arrays = _keras_arrays()
  del arrays["recurrent_kernel"]
  with pytest.raises(ValueError, match=r"missing \['recurrent_kernel'\]"):
    interop.from_keras(arrays)
  with pytest.raises(ValueError, match=r"unexpected \['gamma'\]"):
    interop.from_keras({**_keras_arrays(), "gamma": np.zeros(3)})
  bad = _keras_arrays()
  bad["recurrent_kernel"] = np.zeros((H, 2 * H), np.float32)
  with pytest.raises(ValueError, match=r"'recurrent_kernel' must have shape \[H, 3H\]"):
    interop.from_keras(bad)
  bad = _keras_arrays()
  bad["kernel"] = np.zeros((I, 3 * H + 1), np.float32)
  with pytest.raises(ValueError, match=r"'kernel' must have shape \[I, 3H=15\]"):
    interop.from_keras(bad)
  with pytest.raises(ValueError, match=r"'bias' must have shape \[2, 3H\]"):
    interop.from_keras(_keras_arrays((4, 3 * H)))
  with pytest.raises(ValueError, match="belongs to reset_after=True"):
    interop.from_keras(_keras_arrays(), reset_after=False)
