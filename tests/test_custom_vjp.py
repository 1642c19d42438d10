"""The hand-written backward pass against autodiff through the reference scan."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxgru
from jaxgru import custom_vjp
from jaxgru import gates
from jaxgru import scan

T, B, H = 6, 3, 4
LENGTHS = np.array([6, 2, 0])  # full, ragged, empty


def _problem(seed=0, dtype=jnp.float32):
  keys = jax.random.split(jax.random.key(seed), 6)
  params = {
      "recurrent_kernel": (0.5 * jax.random.normal(keys[0], (H, 3 * H))).astype(dtype),
      "recurrent_bias": (0.3 * jax.random.normal(keys[1], (3 * H,))).astype(dtype),
  }
  x_proj = jax.random.normal(keys[2], (T, B, 3 * H)).astype(dtype)
  h0 = 0.5 * jax.random.normal(keys[3], (B, H))
  # Random cotangents for both outputs, so that every gradient path is weighted.
  w_y = jax.random.normal(keys[4], (T, B, H))
  w_h = jax.random.normal(keys[5], (B, H))
  return params, x_proj, h0, w_y, w_h


def _loss(runner, w_y, w_h, params, x_proj, h0, **kwargs):
  ys, h_last = runner(params, x_proj, h0, **kwargs)
  return jnp.sum(ys * w_y) + jnp.sum(h_last * w_h)


def _values_and_grads(runner, kwargs, problem):
  params, x_proj, h0, w_y, w_h = problem
  loss = functools.partial(_loss, runner, w_y, w_h, **kwargs)
  outs = jax.jit(lambda p, x, h: runner(p, x, h, **kwargs))(params, x_proj, h0)
  grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(params, x_proj, h0)
  return outs, grads


@pytest.mark.parametrize("variant", ["reset_after", "reset_before"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "ragged"])
def test_matches_autodiff_through_gru_scan(variant, reverse, lengths):
  kwargs = dict(variant=variant, reverse=reverse, seq_lengths=None if lengths is None else jnp.asarray(lengths))
  problem = _problem()
  (ys, h_last), grads = _values_and_grads(custom_vjp.gru_scan_custom_vjp, kwargs, problem)
  (ys_ref, h_ref), grads_ref = _values_and_grads(scan.gru_scan, kwargs, problem)
  assert ys.shape == (T, B, H) and ys.dtype == jnp.float32
  assert h_last.shape == (B, H) and h_last.dtype == jnp.float32
  np.testing.assert_allclose(ys, ys_ref, atol=1e-5, rtol=0)
  np.testing.assert_allclose(h_last, h_ref, atol=1e-5, rtol=0)
  flat, flat_ref = jax.tree.leaves(grads), jax.tree.leaves(grads_ref)
  assert len(flat) == len(flat_ref) == 4  # recurrent kernel and bias, x_proj, h0
  for g, g_ref in zip(flat, flat_ref):
    assert g.shape == g_ref.shape and g.dtype == g_ref.dtype
    np.testing.assert_allclose(g, g_ref, atol=1e-5, rtol=0)


def test_padded_steps_get_no_input_gradient():
  params, x_proj, h0, w_y, w_h = _problem(1)
  lengths = jnp.asarray(LENGTHS)
  loss = functools.partial(_loss, custom_vjp.gru_scan_custom_vjp, w_y, w_h, seq_lengths=lengths)
  d_x = jax.grad(loss, argnums=1)(params, x_proj, h0)  # [T, B, 3H]
  valid = np.arange(T)[:, None] < LENGTHS[None, :]  # [T, B]
  assert np.all(np.asarray(d_x)[~valid] == 0)
  assert np.all(np.abs(np.asarray(d_x)[valid]).sum(-1) > 0)
  # An empty sequence passes h0 straight through to h_last.
  d_h0 = jax.grad(loss, argnums=2)(params, x_proj, h0)
  np.testing.assert_allclose(d_h0[2], w_h[2], atol=1e-6)


@pytest.mark.parametrize("variant", ["reset_after", "reset_before"])
@pytest.mark.parametrize("reverse", [False, True])
def test_check_grads_against_finite_differences(variant, reverse):
  params, x_proj, h0, _, _ = _problem(2)
  lengths = jnp.asarray(LENGTHS)

  def f(w, b, x, h):
    p = {"recurrent_kernel": w, "recurrent_bias": b}
    return custom_vjp.gru_scan_custom_vjp(p, x, h, variant=variant, reverse=reverse, seq_lengths=lengths)

  args = (params["recurrent_kernel"], params["recurrent_bias"], x_proj, h0)
  check_grads(f, args, order=1, modes=["rev"], atol=1e-2, rtol=1e-2, eps=1e-3)


def test_unroll_gives_the_same_gradients():
  problem = _problem(3)
  _, grads = _values_and_grads(custom_vjp.gru_scan_custom_vjp, dict(unroll=1), problem)
  _, grads_unrolled = _values_and_grads(custom_vjp.gru_scan_custom_vjp, dict(unroll=4), problem)
  for g, g_ref in zip(jax.tree.leaves(grads_unrolled), jax.tree.leaves(grads)):
    np.testing.assert_allclose(g, g_ref, atol=1e-6, rtol=0)


def test_bfloat16_compute_stays_close_to_float32():
  params, x_proj, h0, w_y, w_h = _problem(4)
  kwargs = dict(seq_lengths=jnp.asarray(LENGTHS))
  (ys, h_last), grads = _values_and_grads(custom_vjp.gru_scan_custom_vjp, dict(kwargs, dtype=jnp.bfloat16), _problem(4))
  (ys_ref, _), grads_ref = _values_and_grads(scan.gru_scan, kwargs, _problem(4))
  (ys_bf, _), _ = _values_and_grads(scan.gru_scan, dict(kwargs, dtype=jnp.bfloat16), _problem(4))
  assert ys.dtype == h_last.dtype == jnp.float32  # the carry stays float32
  np.testing.assert_allclose(ys, ys_ref, atol=5e-2, rtol=0)
  np.testing.assert_allclose(ys, ys_bf, atol=5e-2, rtol=0)
  for g, g_ref in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_ref)):
    assert g.dtype == g_ref.dtype == jnp.float32
    scale = float(jnp.abs(g_ref).max())
    np.testing.assert_allclose(g, g_ref, atol=5e-2 * max(scale, 1.0), rtol=0)


@pytest.mark.parametrize(
    ("variant", "reverse", "lengths"),
    [("reset_after", False, None), ("reset_after", True, LENGTHS), ("reset_before", False, LENGTHS), ("reset_before", True, None)],
    ids=["after-forward-full", "after-reverse-ragged", "before-forward-ragged", "before-reverse-full"],
)
def test_in_loop_projection_matches_hoisted_scan(variant, reverse, lengths):
  keys = jax.random.split(jax.random.key(7), 3)
  params, _, h0, w_y, w_h = _problem(7)
  params = dict(
      params,
      input_kernel=jax.random.normal(keys[0], (2, 3 * H)),
      input_bias=0.3 * jax.random.normal(keys[1], (3 * H,)),
  )
  x = jax.random.normal(keys[2], (T, B, 2))  # [T, B, I]
  kwargs = dict(variant=variant, reverse=reverse, seq_lengths=None if lengths is None else jnp.asarray(lengths))

  def hoisted(p, x, h0, **kw):
    return scan.gru_scan(p, gates.input_projection(p, x), h0, **kw)

  problem = (params, x, h0, w_y, w_h)
  (ys, h_last), grads = _values_and_grads(custom_vjp.gru_scan_from_inputs, kwargs, problem)
  (ys_ref, h_ref), grads_ref = _values_and_grads(hoisted, kwargs, problem)
  np.testing.assert_allclose(ys, ys_ref, atol=1e-5, rtol=0)
  np.testing.assert_allclose(h_last, h_ref, atol=1e-5, rtol=0)
  flat, flat_ref = jax.tree.leaves(grads), jax.tree.leaves(grads_ref)
  assert len(flat) == len(flat_ref) == 6  # four parameters, x, h0
  for g, g_ref in zip(flat, flat_ref):
    assert g.shape == g_ref.shape and g.dtype == g_ref.dtype
    np.testing.assert_allclose(g, g_ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("implementation", ["custom_vjp", "custom_vjp_in_loop"])
def test_gru_layer_gradients_match_scan(implementation):
  x = jax.random.normal(jax.random.key(5), (B, T, 2))  # [B, T, I]
  lengths = jnp.asarray(LENGTHS)
  make = functools.partial(jaxgru.GRU, features=H, num_layers=2, bidirectional=True)
  variables = make(implementation="scan").init(jax.random.key(6), x)

  def loss(implementation, variables, x):
    ys, h_n = make(implementation=implementation).apply(variables, x, seq_lengths=lengths)
    return jnp.sum(ys * jnp.cos(ys)) + jnp.sum(h_n**2)

  grads = jax.jit(jax.grad(functools.partial(loss, implementation), argnums=(0, 1)))(variables, x)
  grads_ref = jax.jit(jax.grad(functools.partial(loss, "scan"), argnums=(0, 1)))(variables, x)
  for g, g_ref in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_ref)):
    np.testing.assert_allclose(g, g_ref, atol=1e-5, rtol=0)


def test_implementation_choice():
  resolve = scan.resolve_implementation
  assert resolve("custom_vjp") is scan.Implementation.CUSTOM_VJP
  assert resolve("auto", backend="cpu") is scan.Implementation.CUSTOM_VJP_IN_LOOP
  assert resolve("auto", backend="gpu") is scan.Implementation.CUSTOM_VJP
  with pytest.raises(ValueError, match="unknown GRU implementation 'fused'"):
    jaxgru.GRU(features=H, implementation="fused")


def test_forward_mode_needs_the_scan_implementation():
  params, x_proj, h0, _, _ = _problem(8)
  tangent = jnp.ones_like(x_proj)
  _, scan_tangent = jax.jvp(lambda x: scan.gru_scan(params, x, h0)[0], (x_proj,), (tangent,))
  assert scan_tangent.shape == (T, B, H)
  with pytest.raises(TypeError, match="custom_vjp"):
    jax.jvp(lambda x: custom_vjp.gru_scan_custom_vjp(params, x, h0)[0], (x_proj,), (tangent,))


@pytest.mark.parametrize(
    ("x_shape", "h0_shape", "message"),
    [((T, B, 3 * H + 1), (B, H), "x_proj must have shape"), ((B, 3 * H), (B, H), "rank 3"), ((T, B, 3 * H), (B + 1, H), "h0 must")],
)
def test_bad_shapes_raise_value_error(x_shape, h0_shape, message):
  params, *_ = _problem()
  with pytest.raises(ValueError, match=message):
    custom_vjp.gru_scan_custom_vjp(params, jnp.zeros(x_shape), jnp.zeros(h0_shape))


def test_unknown_variant_raises_value_error():
  params, x_proj, h0, _, _ = _problem()
  with pytest.raises(ValueError, match="unknown GRU variant 'cho'"):
    custom_vjp.gru_scan_custom_vjp(params, x_proj, h0, variant="cho")


def test_recurrent_mask_needs_the_scan_implementation():
  params, x_proj, h0, _, _ = _problem()
  params = dict(params, input_kernel=jnp.ones((2, 3 * H)), input_bias=jnp.zeros(3 * H))
  x = jnp.ones((T, B, 2))
  with pytest.raises(ValueError, match="recurrent_mask .* needs implementation 'scan'"):
    scan.run_direction("custom_vjp_in_loop", params, x, h0, recurrent_mask=jnp.ones((B, H)))
