"""jaxgru.GRU and the pure maths against loops, NumPy float64 and themselves."""

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxgru
from jaxgru import gates

B, T, I, H = 3, 6, 4, 5


def _random_params(key, input_features=I, features=H, scale=0.5):
  k = jax.random.split(key, 4)
  return {
    "input_kernel": scale * jax.random.normal(k[0], (input_features, 3 * features)),
    "recurrent_kernel": scale * jax.random.normal(k[1], (features, 3 * features)),
    "input_bias": scale * jax.random.normal(k[2], (3 * features,)),
    "recurrent_bias": scale * jax.random.normal(k[3], (3 * features,)),
  }


def _numpy_gru_step(p, h, x, variant):
  """Independent float64 reference written from the equations."""
  sig = lambda v: 1.0 / (1.0 + np.exp(-v))
  wi, wh, bi, bh = (np.asarray(p[n], np.float64) for n in gates.PARAM_NAMES)
  wir, wiz, win = np.split(wi, 3, axis=1)
  whr, whz, whn = np.split(wh, 3, axis=1)
  bir, biz, bin_ = np.split(bi, 3)
  bhr, bhz, bhn = np.split(bh, 3)
  r = sig(x @ wir + bir + h @ whr + bhr)
  z = sig(x @ wiz + biz + h @ whz + bhz)
  if variant == "reset_after":
    n = np.tanh(x @ win + bin_ + r * (h @ whn + bhn))
  else:
    n = np.tanh(x @ win + bin_ + (r * h) @ whn + bhn)
  return (1 - z) * n + z * h


@pytest.mark.parametrize("variant", ["reset_after", "reset_before"])
def test_step_matches_float64_numpy(key, variant):
  p = _random_params(key)
  h = np.random.default_rng(0).normal(size=(B, H))
  x = np.random.default_rng(1).normal(size=(B, I))
  got = gates.gru_step(p, jnp.asarray(h, jnp.float32), jnp.asarray(x, jnp.float32), variant)
  assert got.shape == (B, H) and got.dtype == jnp.float32
  np.testing.assert_allclose(got, _numpy_gru_step(p, h, x, variant), atol=2e-6)


def test_variants_differ(key):
  p = _random_params(key)
  h, x = jnp.ones((B, H)), jnp.ones((B, I))
  assert float(jnp.abs(gates.gru_step(p, h, x, "reset_after") - gates.gru_step(p, h, x, "reset_before")).max()) > 1e-3


@pytest.mark.parametrize("variant", ["reset_after", "reset_before"])
@pytest.mark.parametrize("reverse", [False, True])
def test_scan_matches_python_loop(key, variant, reverse):
  p = _random_params(key)
  x = jax.random.normal(jax.random.key(1), (T, B, I))
  h0 = jax.random.normal(jax.random.key(2), (B, H))
  ys, h_last = jaxgru.gru_scan(p, gates.input_projection(p, x), h0, variant=variant, reverse=reverse)
  h, expected = h0, [None] * T
  for t in reversed(range(T)) if reverse else range(T):
    h = gates.gru_step(p, h, x[t], variant)
    expected[t] = h
  np.testing.assert_allclose(ys, jnp.stack(expected), atol=1e-6)
  np.testing.assert_allclose(h_last, h, atol=1e-6)


def test_layer_reset_before_matches_float64_numpy(key):
  layer = jaxgru.GRU(H, variant="reset_before")
  x = jax.random.normal(key, (B, T, I))
  variables = layer.init(jax.random.key(1), x)
  p = variables["params"]["layer_0"]
  y, h_n = layer.apply(variables, x)
  h = np.zeros((B, H))
  for t in range(T):
    h = _numpy_gru_step(p, h, np.asarray(x[:, t], np.float64), "reset_before")
    np.testing.assert_allclose(y[:, t], h, atol=2e-6)
  np.testing.assert_allclose(h_n[0], h, atol=2e-6)


def test_jit_matches_eager(key):
  layer = jaxgru.GRU(H, num_layers=2, bidirectional=True)
  x = jax.random.normal(key, (B, T, I))
  variables = layer.init(jax.random.key(1), x)
  lengths = jnp.array([T, 0, 3])
  eager = layer.apply(variables, x, seq_lengths=lengths)
  jitted = jax.jit(lambda v, x, l: layer.apply(v, x, seq_lengths=l))(variables, x, lengths)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), eager, jitted)


def test_check_grads(key):
  layer = jaxgru.GRU(3, bidirectional=True)
  x = jax.random.normal(key, (2, 4, 2))
  variables = layer.init(jax.random.key(1), x)
  lengths = jnp.array([4, 2])
  f = lambda params, x: layer.apply({"params": params}, x, seq_lengths=lengths)[0]
  check_grads(f, (variables["params"], x), order=1, modes=("rev",), atol=1e-2, rtol=1e-2, eps=1e-3)


def test_seq_lengths_semantics(key):
  layer = jaxgru.GRU(H, bidirectional=True)
  x = jax.random.normal(key, (B, T, I))
  variables = layer.init(jax.random.key(1), x)
  h0 = jax.random.normal(jax.random.key(2), (2, B, H))
  lengths = jnp.array([T, 0, 2])
  y, h_n = layer.apply(variables, x, seq_lengths=lengths, initial_carry=h0)
  np.testing.assert_array_equal(y[1], 0.0)  # length 0: zero outputs,
  np.testing.assert_array_equal(h_n[:, 1], h0[:, 1])  # final carry = initial carry
  np.testing.assert_array_equal(y[2, 2:], 0.0)  # padded steps are exactly zero
  # The truncated sequence alone gives the same valid outputs and final state.
  y2, h2 = layer.apply(variables, x[2:, :2], initial_carry=h0[:, 2:])
  np.testing.assert_allclose(y[2, :2], y2[0], atol=1e-6)
  np.testing.assert_allclose(h_n[:, 2], h2[:, 0], atol=1e-6)


def test_out_of_range_lengths_are_clipped_under_jit(key):
  """Documented rule: under jit, lengths > T act as T and negative ones as 0."""
  layer = jaxgru.GRU(H)
  x = jax.random.normal(key, (2, T, I))
  variables = layer.init(jax.random.key(1), x)
  run = jax.jit(lambda l: layer.apply(variables, x, seq_lengths=l))
  y_bad, h_bad = run(jnp.array([T + 5, -3]))
  y_ok, h_ok = run(jnp.array([T, 0]))
  np.testing.assert_array_equal(y_bad, y_ok)
  np.testing.assert_array_equal(h_bad, h_ok)
  with pytest.raises(ValueError, match=r"seq_lengths must lie in \[0, T=6\]"):
    layer.apply(variables, x, seq_lengths=jnp.array([T + 5, 1]))


def test_dropout_between_layers(key):
  layer = jaxgru.GRU(H, num_layers=2, dropout=0.5)
  x = jax.random.normal(key, (B, T, I))
  variables = layer.init(jax.random.key(1), x)
  det = layer.apply(variables, x)
  np.testing.assert_array_equal(det[0], layer.apply(variables, x, deterministic=True)[0])
  a = layer.apply(variables, x, deterministic=False, rngs={"dropout": jax.random.key(2)})
  b = layer.apply(variables, x, deterministic=False, rngs={"dropout": jax.random.key(3)})
  assert not np.allclose(a[0], det[0]) and not np.allclose(a[0], b[0])
  # Dropout acts only between layers: with one layer it changes nothing.
  single = jaxgru.GRU(H, dropout=0.5)
  v1 = single.init(jax.random.key(1), x)
  np.testing.assert_array_equal(
    single.apply(v1, x)[0], single.apply(v1, x, deterministic=False, rngs={"dropout": key})[0]
  )


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_output_dtypes(key, dtype):
  layer = jaxgru.GRU(H, dtype=dtype)
  x = jax.random.normal(key, (B, T, I))
  variables = layer.init(jax.random.key(1), x)
  y, h_n = layer.apply(variables, x)
  assert h_n.dtype == jnp.float32  # the carry keeps the parameter dtype
  assert y.shape == (B, T, H)
  ref, _ = jaxgru.GRU(H).apply(variables, x)
  np.testing.assert_allclose(y.astype(jnp.float32), ref, atol=5e-2 if dtype == jnp.bfloat16 else 1e-6)


@pytest.fixture(scope="module")
def padded_model():
  layer = jaxgru.GRU(3, num_layers=2, bidirectional=True)
  variables = layer.init(jax.random.key(0), jnp.zeros((1, 1, 2)))
  apply = jax.jit(lambda x, lengths: layer.apply(variables, x, seq_lengths=lengths))  # one compile per shape
  return apply


@hypothesis.settings(max_examples=20, deadline=None)
@hypothesis.given(batch=st.sampled_from([1, 3]), seed=st.integers(0, 2**31 - 1), data=st.data())
def test_padding_invariance(padded_model, batch, seed, data):
  """Values at padded positions (NaN and inf included) never affect outputs or final states."""
  apply, steps = padded_model, 5
  lengths = np.array(data.draw(st.lists(st.integers(0, steps), min_size=batch, max_size=batch)))
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(batch, steps, 2)).astype(np.float32)
  x2 = x.copy()
  padded = np.arange(steps)[None, :] >= lengths[:, None]
  fill = data.draw(st.sampled_from(["large", "nan", "inf"]))
  x2[padded] = {"large": rng.normal(size=(int(padded.sum()), 2)) * 100, "nan": np.nan, "inf": np.inf}[fill]
  y, h = apply(x, lengths)
  y2, h2 = apply(x2, lengths)
  np.testing.assert_array_equal(y, y2)
  np.testing.assert_array_equal(h, h2)
  assert not np.any(np.asarray(y)[padded])
