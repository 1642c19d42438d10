"""minGRU: parallel, log-space and sequential modes against a NumPy loop."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgru
from jaxgru import mingru

B, I, H = 2, 3, 4
MODES = ["parallel", "log", "sequential"]


def _params(key, input_features=I, features=H, scale=1.0):
  k1, k2 = jax.random.split(jax.random.key(key))
  return {
    "kernel": scale * jax.random.normal(k1, (input_features, 2 * features)),
    "bias": scale * jax.random.normal(k2, (2 * features,)),
  }


def _numpy_mingru(params, x, h0, candidate):
  """Feng et al. 2024, eqs. for minGRU, one step at a time in float64: x [T, B, I], h0 [B, H]."""
  w, b = np.asarray(params["kernel"], np.float64), np.asarray(params["bias"], np.float64)
  h, ys = np.asarray(h0, np.float64), []
  for x_t in np.asarray(x, np.float64):
    k, v = np.split(x_t @ w + b, 2, axis=-1)
    z = 1.0 / (1.0 + np.exp(-k))
    if candidate == "g":
      v = np.where(v >= 0, v + 0.5, 1.0 / (1.0 + np.exp(-v)))
    h = (1.0 - z) * h + z * v
    ys.append(h)
  return np.stack(ys), h


@pytest.mark.parametrize("steps", [1, 7, 4096])
def test_modes_agree_with_each_other_and_with_numpy(steps):
  params = _params(0)
  x = jax.random.normal(jax.random.key(1), (steps, B, I))
  h0 = jax.random.normal(jax.random.key(2), (B, H))  # any sign, also for the log-space mode
  run = jax.jit(mingru.mingru_scan, static_argnames=("mode", "candidate"))
  for candidate, modes in (("g", MODES), ("linear", ["parallel", "sequential"])):
    want, want_last = _numpy_mingru(params, x, h0, candidate)
    for mode in modes:
      ys, h_last = run(params, x, h0, mode=mode, candidate=candidate)
      assert ys.shape == (steps, B, H) and ys.dtype == jnp.float32, (mode, ys.shape, ys.dtype)
      np.testing.assert_allclose(ys, want, rtol=0, atol=1e-4, err_msg=f"{mode}/{candidate}")
      np.testing.assert_allclose(h_last, want_last, rtol=0, atol=1e-4)


@pytest.mark.parametrize("mode", MODES)
def test_layer_stacks_layers_like_the_pure_scan(mode):
  rnn = jaxgru.MinGRU(features=H, num_layers=3, mode=mode, candidate="g")
  x = jax.random.normal(jax.random.key(3), (B, 6, I))
  variables = jax.jit(rnn.init)(jax.random.key(4), x)
  assert jax.tree_util.tree_map(jnp.shape, variables["params"]) == {
    "layer_0": {"kernel": (I, 2 * H), "bias": (2 * H,)},
    "layer_1": {"kernel": (H, 2 * H), "bias": (2 * H,)},
    "layer_2": {"kernel": (H, 2 * H), "bias": (2 * H,)},
  }
  y, h_n = jax.jit(rnn.apply)(variables, x)
  assert y.shape == (B, 6, H) and h_n.shape == (3, B, H) and y.dtype == h_n.dtype == jnp.float32
  inputs, finals = np.swapaxes(np.asarray(x), 0, 1), []
  for layer in range(3):
    inputs, h_last = _numpy_mingru(variables["params"][f"layer_{layer}"], inputs, np.zeros((B, H)), "g")
    finals.append(h_last)
  np.testing.assert_allclose(y, np.swapaxes(inputs, 0, 1), atol=1e-5)
  np.testing.assert_allclose(h_n, np.stack(finals), atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_seq_lengths_zero_padding_and_keep_the_last_valid_state(mode):
  steps, lengths = 9, [9, 4, 1, 0]
  rnn = jaxgru.MinGRU(features=H, num_layers=2, mode=mode, candidate="g")
  x = jax.random.normal(jax.random.key(5), (len(lengths), steps, I))
  variables = jax.jit(rnn.init)(jax.random.key(6), x)
  apply = jax.jit(rnn.apply)
  y, h_n = apply(variables, x, seq_lengths=jnp.array(lengths))
  # Garbage in the padding changes nothing.
  valid = (np.arange(steps)[None, :] < np.array(lengths)[:, None])[..., None]
  x_noisy = jnp.where(valid, x, 1e3)
  y_noisy, h_noisy = apply(variables, x_noisy, seq_lengths=jnp.array(lengths))
  np.testing.assert_array_equal(y_noisy, y)
  np.testing.assert_array_equal(h_noisy, h_n)
  for b, length in enumerate(lengths):
    np.testing.assert_array_equal(y[b, length:], 0.0)
    if length:
      y_b, h_b = apply(variables, x[b : b + 1, :length])  # the sequence alone
      np.testing.assert_allclose(y[b, :length], y_b[0], atol=1e-6)
      np.testing.assert_allclose(h_n[:, b], h_b[:, 0], atol=1e-6)
    else:
      np.testing.assert_array_equal(h_n[:, b], 0.0)  # the initial state


def test_log_mode_gradients_are_finite_and_equal_the_sequential_ones():
  x = jax.random.normal(jax.random.key(7), (B, 9, I))
  lengths = jnp.array([9, 4])

  def loss(params, mode):
    y, h = jaxgru.MinGRU(features=H, mode=mode, candidate="g").apply({"params": params}, x, seq_lengths=lengths)
    return jnp.sum(jnp.sin(y)) + jnp.sum(h)

  params = jax.jit(jaxgru.MinGRU(features=H, candidate="g").init)(jax.random.key(8), x)["params"]
  grads = {mode: jax.jit(jax.grad(loss), static_argnums=1)(params, mode) for mode in ("log", "sequential")}
  for got, want in zip(jax.tree_util.tree_leaves(grads["log"]), jax.tree_util.tree_leaves(grads["sequential"])):
    assert bool(jnp.all(jnp.isfinite(got)))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_time_major_unbatched_and_jit():
  # Eager calls in the sequential mode (eager associative scans dispatch op by op, slowly).
  rnn = jaxgru.MinGRU(features=H, mode="sequential")
  x = jax.random.normal(jax.random.key(9), (B, 5, I))
  variables = rnn.init(jax.random.key(10), x)
  y, h = rnn.apply(variables, x)
  y_tm, h_tm = jaxgru.MinGRU(features=H, mode="sequential", time_major=True).apply(variables, jnp.swapaxes(x, 0, 1))
  np.testing.assert_allclose(jnp.swapaxes(y_tm, 0, 1), y, atol=1e-6)
  np.testing.assert_array_equal(h_tm, h)
  y_one, h_one = rnn.apply(variables, x[0])  # [T, I]
  assert y_one.shape == (5, H) and h_one.shape == (1, H)
  np.testing.assert_allclose(y_one, y[0], atol=1e-6)
  y_jit, _ = jax.jit(jaxgru.MinGRU(features=H).apply)(variables, x)  # parallel mode, jitted
  np.testing.assert_allclose(y_jit, y, atol=1e-6)


def test_pure_step_is_the_sequential_recurrence():
  params = _params(11)
  x = jax.random.normal(jax.random.key(12), (5, B, I))
  want, _ = _numpy_mingru(params, x, np.zeros((B, H)), "linear")
  h = jnp.zeros((B, H))
  for t in range(5):
    h = mingru.mingru_step(params, h, x[t])
    np.testing.assert_allclose(h, want[t], atol=1e-5)


def test_bad_input_raises():
  with pytest.raises(ValueError, match="unknown minGRU mode 'fast'"):
    jaxgru.MinGRU(features=H, mode="fast")
  with pytest.raises(ValueError, match="unknown minGRU candidate"):
    jaxgru.MinGRU(features=H, candidate="relu")
  with pytest.raises(ValueError, match="mode='log' needs candidate='g'"):
    jaxgru.MinGRU(features=H, mode="log")
  with pytest.raises(ValueError, match="mode='log' needs candidate='g'"):
    mingru.mingru_scan(_params(0), jnp.ones((2, B, I)), jnp.zeros((B, H)), mode="log")
  for name, value in (("features", 0), ("num_layers", 1.5)):
    with pytest.raises(ValueError, match=f"{name} must be a positive integer"):
      jaxgru.MinGRU(**{"features": H, name: value})
  with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
    jaxgru.MinGRU(features=H, dropout=1.0)
  rnn = jaxgru.MinGRU(features=H, num_layers=2, mode="sequential")
  x = jnp.ones((B, 5, I))
  variables = rnn.init(jax.random.key(0), x)
  with pytest.raises(ValueError, match="rank 3"):
    rnn.apply(variables, jnp.ones((1, B, 5, I)))
  with pytest.raises(TypeError, match="MinGRU inputs must be floating point, got complex64"):
    rnn.apply(variables, jnp.ones((B, 5, I), jnp.complex64))
  np.testing.assert_array_equal(rnn.apply(variables, jnp.ones((B, 5, I), jnp.int32))[0], rnn.apply(variables, x)[0])
  with pytest.raises(TypeError, match="MinGRU takes only the inputs positionally"):
    rnn.apply(variables, x, jnp.array([5, 1]))
  with pytest.raises(ValueError, match=r"initial_carry must have shape \[L, B, H\]=\(2, 2, 4\)"):
    rnn.apply(variables, x, initial_carry=jnp.zeros((1, B, H)))
  with pytest.raises(ValueError, match=r"seq_lengths must lie in \[0, T=5\]"):
    rnn.apply(variables, x, seq_lengths=jnp.array([6, 1]))
  with pytest.raises(ValueError, match="got inputs with 7 features, but its parameters expect 3"):
    rnn.apply(variables, jnp.ones((B, 5, 7)))
