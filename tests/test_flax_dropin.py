"""jaxgru.GRUCell as a drop-in for flax.linen.GRUCell in flax's recurrent wrappers."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
import jaxgru
from jaxgru import interop

B, T, I, H = 3, 6, 4, 5
TOL = 1e-5


@pytest.fixture(scope="module")
def weights():
  """Random flax GRUCell params (non-zero biases) and the equivalent jaxgru params."""
  flax_params = nn.GRUCell(H).init(jax.random.key(0), jnp.zeros((1, H)), jnp.zeros((1, I)))["params"]
  flax_params = helpers.perturbed(flax_params, jax.random.key(1))
  return flax_params, interop.from_flax_cell(flax_params)


@pytest.fixture(scope="module")
def x():
  return jax.random.normal(jax.random.key(2), (B, T, I))


def _close(a, b):
  jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, atol=TOL, rtol=0), a, b)
  jax.tree.map(lambda u, v: np.testing.assert_equal(u.dtype, v.dtype), a, b)


RNN_OPTIONS = [
  {},
  {"reverse": True},
  {"reverse": True, "keep_order": True},
  {"return_carry": True},
  {"time_major": True},
  {"unroll": 3},
]


@pytest.mark.parametrize("options", RNN_OPTIONS, ids=lambda o: ",".join(o) or "plain")
def test_rnn_options_match_flax(weights, x, options):
  flax_params, ours = weights
  xs = jnp.swapaxes(x, 0, 1) if options.get("time_major") else x
  y_flax = nn.RNN(nn.GRUCell(H), **options).apply({"params": {"cell": flax_params}}, xs)
  y_ours = nn.RNN(jaxgru.GRUCell(H), **options).apply({"params": {"cell": ours}}, xs)
  _close(y_flax, y_ours)


def test_rnn_seq_lengths_and_initial_carry_match_flax(weights, x):
  flax_params, ours = weights
  lengths = jnp.array([T, 2, 4])
  h0 = jax.random.normal(jax.random.key(3), (B, H))
  kw = dict(seq_lengths=lengths, initial_carry=h0, return_carry=True)
  _close(
    nn.RNN(nn.GRUCell(H)).apply({"params": {"cell": flax_params}}, x, **kw),
    nn.RNN(jaxgru.GRUCell(H)).apply({"params": {"cell": ours}}, x, **kw),
  )


def test_bidirectional_matches_flax(weights, x):
  flax_params, ours = weights
  lengths = jnp.array([T, 1, 3])

  def bi(cell):
    return nn.Bidirectional(nn.RNN(cell), nn.RNN(cell.clone()))

  y_flax = bi(nn.GRUCell(H)).apply(
    {"params": {"forward_rnn": {"cell": flax_params}, "backward_rnn": {"cell": flax_params}}}, x, seq_lengths=lengths
  )
  y_ours = bi(jaxgru.GRUCell(H)).apply(
    {"params": {"forward_rnn": {"cell": ours}, "backward_rnn": {"cell": ours}}}, x, seq_lengths=lengths
  )
  assert y_ours.shape == (B, T, 2 * H)
  _close(y_flax, y_ours)


def _scanned(cell_type, remat=False):
  cell = nn.remat(cell_type) if remat else cell_type
  return nn.scan(cell, variable_broadcast="params", split_rngs={"params": False}, in_axes=1, out_axes=1)


@pytest.mark.parametrize("remat", [False, True])
def test_nn_scan_and_remat_match_flax_and_gradients(weights, x, remat):
  flax_params, ours = weights
  h0 = jnp.zeros((B, H))

  def loss(cell_type, params, x):
    carry, ys = _scanned(cell_type, remat)(H).apply({"params": params}, h0, x)
    return jnp.sum(ys**2) + jnp.sum(carry)

  l_flax, g_flax = jax.value_and_grad(loss, argnums=2)(nn.GRUCell, flax_params, x)
  l_ours, g_ours = jax.value_and_grad(loss, argnums=2)(jaxgru.GRUCell, ours, x)
  np.testing.assert_allclose(l_ours, l_flax, rtol=1e-6)
  np.testing.assert_allclose(g_ours, g_flax, atol=TOL)


def test_nn_vmap_over_a_model_axis(weights):
  """Two independent cells (vmapped parameters) applied to two inputs."""
  flax_params, ours = weights
  stack = lambda p: jax.tree.map(lambda a: jnp.stack([a, 2 * a]), p)
  xs = jax.random.normal(jax.random.key(4), (2, B, I))
  h = jnp.ones((2, B, H)) * 0.1

  def vmapped(cell_type):
    return nn.vmap(cell_type, variable_axes={"params": 0}, split_rngs={"params": True}, in_axes=0)(H)

  out_flax = vmapped(nn.GRUCell).apply({"params": stack(flax_params)}, h, xs)
  out_ours = vmapped(jaxgru.GRUCell).apply({"params": stack(ours)}, h, xs)
  _close(out_flax, out_ours)


def test_initialize_carry_and_feature_axes():
  cell = jaxgru.GRUCell(H)
  carry = cell.initialize_carry(jax.random.key(0), (2, 3, I))
  assert carry.shape == (2, 3, H) and carry.dtype == jnp.float32
  assert cell.num_feature_axes == nn.GRUCell(H).num_feature_axes == 1
  carry = jaxgru.GRUCell(H, carry_init=nn.initializers.ones).initialize_carry(jax.random.key(0), (I,))
  np.testing.assert_array_equal(carry, np.ones(H))


def test_default_init_is_flax_like():
  params = jaxgru.GRUCell(8).init(jax.random.key(0), jnp.zeros((1, 8)), jnp.zeros((1, 16)))["params"]
  assert params["input_kernel"].shape == (16, 24) and params["recurrent_kernel"].shape == (8, 24)
  np.testing.assert_array_equal(params["input_bias"], 0)
  np.testing.assert_array_equal(params["recurrent_bias"], 0)
  for block in jnp.split(params["recurrent_kernel"], 3, axis=-1):  # orthogonal per gate
    np.testing.assert_allclose(block.T @ block, np.eye(8), atol=1e-5)
  std = float(jnp.std(params["input_kernel"]))
  assert 0.5 / 4 < std < 1.5 / 4  # lecun normal: std = 1/sqrt(fan_in = 16)


def test_to_flax_cell_keeps_both_biases(key):
  """jaxgru params with non-zero b_hr, b_hz give the same function in a flax cell."""
  cell = jaxgru.GRUCell(H, bias_init=nn.initializers.normal(1.0))
  h, xt = jax.random.normal(key, (B, H)), jax.random.normal(jax.random.key(9), (B, I))
  params = cell.init(jax.random.key(5), h, xt)["params"]
  assert float(jnp.abs(params["recurrent_bias"][: 2 * H]).sum()) > 0
  _close(nn.GRUCell(H).apply({"params": interop.to_flax_cell(params)}, h, xt), cell.apply({"params": params}, h, xt))
  # from_flax_cell(to_flax_cell(p)) is the same function (b_hr, b_hz folded into b_i).
  back = interop.from_flax_cell(interop.to_flax_cell(params))
  _close(cell.apply({"params": back}, h, xt), cell.apply({"params": params}, h, xt))
