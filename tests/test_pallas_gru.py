"""The persistent Pallas GRU kernel (interpret mode on CPU) against the scan path."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export

import jaxgru
from jaxgru import custom_vjp
from jaxgru import gates
from jaxgru import pallas_gru
from jaxgru import scan

T, B, H = 5, 3, 4  # B is padded to one block of pallas_gru.BLOCK_B rows
LENGTHS = np.array([5, 2, 0])


def _problem(seed=0, batch=B):
  keys = jax.random.split(jax.random.key(seed), 6)
  params = {
      "recurrent_kernel": 0.5 * jax.random.normal(keys[0], (H, 3 * H)),
      "recurrent_bias": 0.3 * jax.random.normal(keys[1], (3 * H,)),
  }
  x_proj = jax.random.normal(keys[2], (T, batch, 3 * H))
  h0 = 0.5 * jax.random.normal(keys[3], (batch, H))
  w_y, w_h = jax.random.normal(keys[4], (T, batch, H)), jax.random.normal(keys[5], (batch, H))
  return params, x_proj, h0, w_y, w_h


def _values_and_grads(runner, problem, **kwargs):
  params, x_proj, h0, w_y, w_h = problem

  def loss(p, x, h):
    ys, h_last = runner(p, x, h, **kwargs)
    return jnp.sum(ys * w_y) + jnp.sum(h_last * w_h), (ys, h_last)

  (_, outs), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True))(params, x_proj, h0)
  return outs, grads


def _assert_close(tree, tree_ref, atol):
  flat, flat_ref = jax.tree.leaves(tree), jax.tree.leaves(tree_ref)
  assert len(flat) == len(flat_ref)
  for a, a_ref in zip(flat, flat_ref):
    assert a.shape == a_ref.shape and a.dtype == a_ref.dtype
    np.testing.assert_allclose(a, a_ref, atol=atol, rtol=0)


kernel = functools.partial(pallas_gru.gru_scan_pallas, interpret=True)


@pytest.mark.parametrize("variant", ["reset_after", "reset_before"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "ragged"])
def test_kernel_matches_scan(variant, reverse, lengths):
  kwargs = dict(variant=variant, reverse=reverse, seq_lengths=None if lengths is None else jnp.asarray(lengths))
  problem = _problem()
  outs, grads = _values_and_grads(kernel, problem, **kwargs)
  outs_ref, grads_ref = _values_and_grads(scan.gru_scan, problem, **kwargs)
  assert outs[0].shape == (T, B, H) and outs[1].shape == (B, H)
  _assert_close(outs, outs_ref, atol=1e-5)
  _assert_close(grads, grads_ref, atol=1e-5)


def test_kernel_over_several_blocks():
  batch = pallas_gru.BLOCK_B + 4  # two programs, the second one padded
  lengths = jnp.arange(batch) % (T + 1)
  problem = _problem(1, batch)
  outs, grads = _values_and_grads(kernel, problem, seq_lengths=lengths, reverse=True)
  outs_ref, grads_ref = _values_and_grads(scan.gru_scan, problem, seq_lengths=lengths, reverse=True)
  _assert_close(outs, outs_ref, atol=1e-5)
  _assert_close(grads, grads_ref, atol=1e-5)


@pytest.mark.parametrize("variant", ["reset_after", "reset_before"])
def test_kernel_bfloat16_within_its_tolerance(variant):
  problem = _problem(2)
  kwargs = dict(variant=variant, seq_lengths=jnp.asarray(LENGTHS))
  outs, grads = _values_and_grads(kernel, problem, dtype=jnp.bfloat16, **kwargs)
  outs_ref, grads_ref = _values_and_grads(scan.gru_scan, problem, **kwargs)
  assert outs[0].dtype == outs[1].dtype == jnp.float32  # the carry stays float32
  _assert_close(outs, outs_ref, atol=3e-2)
  for g, g_ref in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_ref)):
    assert g.dtype == g_ref.dtype
    np.testing.assert_allclose(g, g_ref, atol=3e-2 * max(1.0, float(jnp.abs(g_ref).max())), rtol=0)


@pytest.mark.parametrize(
    ("hidden", "dtype", "variant"),
    [(128, jnp.float32, "reset_after"), (256, jnp.bfloat16, "reset_before")],
)
def test_kernel_lowers_to_triton_for_cuda(hidden, dtype, variant):
  # Lowering for CUDA needs no GPU: this runs the Pallas Triton lowering, so
  # shapes or operations that Triton cannot take fail here, in CI.
  shapes = dict(
      w=jax.ShapeDtypeStruct((hidden, 3 * hidden), jnp.float32),
      b=jax.ShapeDtypeStruct((3 * hidden,), jnp.float32),
      x=jax.ShapeDtypeStruct((8, 32, 3 * hidden), dtype),
      h0=jax.ShapeDtypeStruct((32, hidden), jnp.float32),
      lengths=jax.ShapeDtypeStruct((32,), jnp.int32),
  )

  def forward(w, b, x, h0, lengths):
    p = {"recurrent_kernel": w, "recurrent_bias": b}
    return pallas_gru.gru_scan_pallas(p, x, h0, variant=variant, seq_lengths=lengths, dtype=dtype, interpret=False)

  triton_call = export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")
  exported = export.export(jax.jit(forward), platforms=["cuda"], disabled_checks=[triton_call])(**shapes)
  assert "__gpu$xla.gpu.triton" in exported.mlir_module()


def test_off_gpu_it_falls_back_to_the_scan_path():
  params, x_proj, h0, _, _ = _problem(3)
  ys, h_last = pallas_gru.gru_scan_pallas(params, x_proj, h0)  # CPU: custom_vjp's scan
  ys_ref, h_ref = custom_vjp.gru_scan_custom_vjp(params, x_proj, h0)
  np.testing.assert_array_equal(ys, ys_ref)
  np.testing.assert_array_equal(h_last, h_ref)


def test_gru_layer_with_pallas_matches_scan():
  x = jax.random.normal(jax.random.key(4), (B, T, 2))  # [B, T, I]
  make = functools.partial(jaxgru.GRU, features=H, bidirectional=True)
  variables = make(implementation="scan").init(jax.random.key(5), x)
  ys, h_n = make(implementation="pallas").apply(variables, x, seq_lengths=jnp.asarray(LENGTHS))
  ys_ref, h_ref = make(implementation="scan").apply(variables, x, seq_lengths=jnp.asarray(LENGTHS))
  np.testing.assert_allclose(ys, ys_ref, atol=1e-5, rtol=0)
  np.testing.assert_allclose(h_n, h_ref, atol=1e-5, rtol=0)


def test_auto_picks_the_kernel_on_gpu_only_when_the_weights_fit():
  resolve = functools.partial(scan.resolve_implementation, "auto", backend="gpu")
  assert resolve(hidden=128, dtype=jnp.bfloat16) is scan.Implementation.PALLAS
  assert resolve(hidden=64, dtype=jnp.float32) is scan.Implementation.PALLAS
  assert resolve(hidden=128, dtype=jnp.float32) is scan.Implementation.CUSTOM_VJP  # 192 KiB of weights
  assert resolve(hidden=256, dtype=jnp.bfloat16) is scan.Implementation.CUSTOM_VJP
  assert resolve(hidden=96, dtype=jnp.bfloat16) is scan.Implementation.CUSTOM_VJP  # not a power of two
  assert scan.resolve_implementation("auto", backend="cpu", hidden=64) is scan.Implementation.CUSTOM_VJP_IN_LOOP


def test_kernel_input_projection_gradients_flow_through_autodiff():
  keys = jax.random.split(jax.random.key(6), 3)
  params, _, h0, w_y, _ = _problem(6)
  params = dict(params, input_kernel=jax.random.normal(keys[0], (2, 3 * H)), input_bias=jnp.zeros(3 * H))
  x = jax.random.normal(keys[1], (T, B, 2))

  def loss(runner, p, x):
    return jnp.sum(runner(p, gates.input_projection(p, x), h0)[0] * w_y)

  grads = jax.grad(functools.partial(loss, kernel), argnums=(0, 1))(params, x)
  grads_ref = jax.grad(functools.partial(loss, scan.gru_scan), argnums=(0, 1))(params, x)
  _assert_close(grads, grads_ref, atol=1e-5)
