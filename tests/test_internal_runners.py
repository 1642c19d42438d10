"""White-box: every runner of jaxgru._src against an independent float64 NumPy GRU and autodiff through the scan.

One problem builder (``tests/helpers.py``), one equivalence test parametrized
over every implementation; then what only some implementations do.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export
from jax.test_util import check_grads

import helpers
import jaxgru
from jaxgru._src import backward
from jaxgru._src import dispatch
from jaxgru._src import pallas_gru

LENGTHS = helpers.LENGTHS
CASES = [
  ("reset_after", False, None),
  ("reset_after", True, LENGTHS),
  ("reset_before", False, LENGTHS),
  ("reset_before", True, None),
]
CASE_IDS = ["after-forward-full", "after-reverse-ragged", "before-forward-ragged", "before-reverse-full"]


@pytest.mark.parametrize("name", list(helpers.RUNNERS))
@pytest.mark.parametrize(("variant", "reverse", "lengths"), CASES, ids=CASE_IDS)
def test_matches_numpy_and_autodiff_through_the_scan(name, variant, reverse, lengths):
  kwargs = dict(variant=variant, reverse=reverse, seq_lengths=None if lengths is None else jnp.asarray(lengths))
  problem = helpers.direction_problem(1)
  (ys, h_last), grads = helpers.values_and_grads(helpers.RUNNERS[name], problem, **kwargs)
  params, x, h0, _, _ = problem
  ys_np, h_np = helpers.numpy_gru(params, x, h0, variant=variant, seq_lengths=lengths, reverse=reverse)
  assert ys.shape == ys_np.shape and ys.dtype == jnp.float32
  assert h_last.shape == h_np.shape and h_last.dtype == jnp.float32
  np.testing.assert_allclose(ys, ys_np, atol=1e-5, rtol=0)
  np.testing.assert_allclose(h_last, h_np, atol=1e-5, rtol=0)
  helpers.assert_trees_close(grads, _scan_grads(variant, reverse, lengths is not None), atol=1e-5)


@functools.cache
def _scan_grads(variant, reverse, ragged):
  """Autodiff through the scan on the matrix test's problem: one compile per case, shared by every runner."""
  kwargs = dict(variant=variant, reverse=reverse, seq_lengths=jnp.asarray(LENGTHS) if ragged else None)
  return helpers.values_and_grads(helpers.RUNNERS["scan"], helpers.direction_problem(1), **kwargs)[1]


@pytest.mark.parametrize("name", list(helpers.RUNNERS))
def test_padding_reaches_neither_outputs_nor_gradients(name):
  params, x, h0, w_y, w_h = helpers.direction_problem(2)
  lengths = jnp.asarray(LENGTHS)
  padded = jnp.arange(x.shape[0])[:, None, None] >= lengths[None, :, None]  # [T, B, 1]
  x_nan = jnp.where(padded, jnp.nan, x)
  (ys, h_last), grads = helpers.values_and_grads(
    helpers.RUNNERS[name], (params, x_nan, h0, w_y, w_h), seq_lengths=lengths
  )
  (ys_ref, h_ref), grads_ref = helpers.values_and_grads(
    helpers.RUNNERS[name], (params, x, h0, w_y, w_h), seq_lengths=lengths
  )
  for tree in (ys, h_last, grads):
    assert all(bool(jnp.isfinite(leaf).all()) for leaf in jax.tree.leaves(tree))
  helpers.assert_trees_close((ys, h_last), (ys_ref, h_ref), atol=0)
  helpers.assert_trees_close(grads, grads_ref, atol=1e-6)
  assert not bool(grads[1][padded[..., 0]].any())  # padded inputs get zero gradient


@pytest.mark.parametrize("name", list(helpers.PROJECTION_RUNNERS))
def test_nan_projection_padding_reaches_no_gradient(name):
  params, x, h0, w_y, w_h = helpers.direction_problem(2)
  params = {k: params[k] for k in ("recurrent_kernel", "recurrent_bias")}
  lengths = jnp.asarray(LENGTHS)
  x_proj = jax.random.normal(jax.random.key(3), x.shape[:2] + (12,))
  x_proj = jnp.where(jnp.arange(6)[:, None, None] >= lengths[None, :, None], jnp.nan, x_proj)
  (ys, h_last), grads = helpers.values_and_grads(
    helpers.PROJECTION_RUNNERS[name], (params, x_proj, h0, w_y, w_h), seq_lengths=lengths
  )
  assert all(bool(jnp.isfinite(leaf).all()) for leaf in jax.tree.leaves((ys, h_last, grads)))


@pytest.mark.parametrize("implementation", ["scan", "custom_vjp", "custom_vjp_in_loop"])
def test_layer_gradients_match_the_scan(implementation):
  x = jax.random.normal(jax.random.key(5), (3, 6, 2))  # [B, T, I]
  x = jnp.where(jnp.arange(6)[None, :, None] >= jnp.asarray(LENGTHS)[:, None, None], jnp.inf, x)  # inf padding
  make = functools.partial(jaxgru.GRU, features=4, num_layers=2, bidirectional=True)
  variables = make(implementation="scan").init(jax.random.key(6), jnp.zeros_like(x))

  def loss(implementation, variables):
    ys, h_n = make(implementation=implementation).apply(variables, x, seq_lengths=jnp.asarray(LENGTHS))
    return jnp.sum(ys * jnp.cos(ys)) + jnp.sum(h_n**2)

  grads = jax.jit(jax.grad(functools.partial(loss, implementation)))(variables)
  grads_ref = jax.jit(jax.grad(functools.partial(loss, "auto")))(variables)
  assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads))
  helpers.assert_trees_close(grads, grads_ref, atol=1e-5)


@pytest.mark.parametrize("variant", ["reset_after", "reset_before"])
@pytest.mark.parametrize("reverse", [False, True])
def test_custom_backward_against_finite_differences(variant, reverse):
  params, x, h0, _, _ = helpers.direction_problem(3, steps=4)
  run = functools.partial(
    backward.gru_scan_custom_vjp_in_loop, variant=variant, reverse=reverse, seq_lengths=jnp.array([4, 2, 0])
  )
  check_grads(run, (params, x, h0), order=1, modes=["rev"], atol=1e-2, rtol=1e-2, eps=1e-3)


def test_unroll_gives_the_values_and_gradients_of_the_plain_scan():
  problem = helpers.direction_problem(4)
  outs_ref, grads_ref = helpers.values_and_grads(helpers.RUNNERS["scan"], problem, seq_lengths=jnp.asarray(LENGTHS))
  for name in ("scan", "custom_vjp_in_loop"):
    outs, grads = helpers.values_and_grads(helpers.RUNNERS[name], problem, unroll=3, seq_lengths=jnp.asarray(LENGTHS))
    helpers.assert_trees_close((outs, grads), (outs_ref, grads_ref), atol=1e-5)


# bfloat16 parameters and inputs with a float32 carry: the compute dtype is the one rule's
# (jaxgru._src.dtypes.compute_dtype), the same for every implementation. dtype=None promoted to
# float32 everywhere but "custom_vjp_in_loop", which computed in bfloat16 (1.6e-2 off the scan).
MIXED = {"none": (None, 1e-5, 1e-5), "bfloat16": (jnp.bfloat16, 3e-2, 6e-2), "float32": (jnp.float32, 1e-5, 1e-5)}


@pytest.mark.parametrize("compute", list(MIXED))
def test_mixed_dtypes_agree_across_implementations_and_with_float64(compute):
  dtype, atol_scan, atol_ref = MIXED[compute]
  params, x, h0, _, _ = helpers.direction_problem(8, dtype=jnp.bfloat16)  # h0 stays float32
  kwargs = dict(dtype=dtype, seq_lengths=jnp.asarray(LENGTHS), variant="reset_before")
  outs = {name: jax.jit(functools.partial(run, **kwargs))(params, x, h0) for name, run in helpers.RUNNERS.items()}
  ys_np, h_np = helpers.numpy_gru(params, x, h0, variant="reset_before", seq_lengths=LENGTHS)  # float64
  for name, (ys, h_last) in outs.items():
    assert ys.dtype == h_last.dtype == jnp.float32, name  # the carry's dtype
    helpers.assert_trees_close((ys, h_last), outs["scan"], atol=atol_scan)
    np.testing.assert_allclose(ys, ys_np, atol=atol_ref, rtol=0, err_msg=name)
    np.testing.assert_allclose(h_last, h_np, atol=atol_ref, rtol=0, err_msg=name)


@pytest.mark.parametrize("name", ["custom_vjp_in_loop", "pallas_interpret"])
def test_bfloat16_compute_keeps_a_float32_carry_close_to_float32(name):
  problem = helpers.direction_problem(5)
  (ys, h_last), grads = helpers.values_and_grads(helpers.RUNNERS[name], problem, dtype=jnp.bfloat16)
  (ys_ref, _), grads_ref = helpers.values_and_grads(helpers.RUNNERS["scan"], problem)
  assert ys.dtype == h_last.dtype == jnp.float32
  np.testing.assert_allclose(ys, ys_ref, atol=5e-2, rtol=0)
  for g, g_ref in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_ref)):
    assert g.dtype == g_ref.dtype
    np.testing.assert_allclose(g, g_ref, atol=5e-2 * max(1.0, float(jnp.abs(g_ref).max())), rtol=0)


def test_pallas_kernel_over_several_batch_blocks():
  problem = helpers.direction_problem(6, batch=pallas_gru.BLOCK_B + 3, steps=3)
  outs, grads = helpers.values_and_grads(helpers.RUNNERS["pallas_interpret"], problem)
  outs_ref, grads_ref = helpers.values_and_grads(helpers.RUNNERS["scan"], problem)
  helpers.assert_trees_close((outs, grads), (outs_ref, grads_ref), atol=1e-5)


@pytest.mark.parametrize(
  ("hidden", "dtype", "variant"), [(128, jnp.float32, "reset_after"), (256, jnp.bfloat16, "reset_before")]
)
def test_pallas_kernel_lowers_to_triton_for_cuda(hidden, dtype, variant):
  # The second case takes episode resets (an int32 [T, b] block and a reset state per program).
  # Lowering for CUDA needs no GPU: shapes or operations Triton cannot take fail here, in CI.
  shapes = dict(
    w=jax.ShapeDtypeStruct((hidden, 3 * hidden), jnp.float32),
    b=jax.ShapeDtypeStruct((3 * hidden,), jnp.float32),
    x=jax.ShapeDtypeStruct((8, 32, 3 * hidden), dtype),
    h0=jax.ShapeDtypeStruct((32, hidden), jnp.float32),
    lengths=jax.ShapeDtypeStruct((32,), jnp.int32),
    resets=jax.ShapeDtypeStruct((8, 32), jnp.bool_),
  )
  with_resets = variant == "reset_before"

  def forward(w, b, x, h0, lengths, resets):
    p = {"recurrent_kernel": w, "recurrent_bias": b}
    return pallas_gru.gru_scan_pallas(
      p,
      x,
      h0,
      variant=variant,
      seq_lengths=lengths,
      dtype=dtype,
      interpret=False,
      resets=resets if with_resets else None,
      reset_carry=jnp.zeros_like(h0) if with_resets else None,
    )

  triton_call = export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")
  with pytest.MonkeyPatch.context() as patch:  # the backend check is what stops it on CPU
    patch.setattr(jax, "default_backend", lambda: "gpu")
    exported = export.export(jax.jit(forward), platforms=["cuda"], disabled_checks=[triton_call])(**shapes)
  assert "__gpu$xla.gpu.triton" in exported.mlir_module()


def test_forward_mode_needs_the_scan():
  params, x, h0, _, _ = helpers.direction_problem(7)
  _, tangent = jax.jvp(lambda x: helpers.RUNNERS["scan"](params, x, h0)[0], (x,), (jnp.ones_like(x),))
  assert tangent.shape == (6, 3, 4)
  with pytest.raises(TypeError, match="custom_vjp"):
    jax.jvp(lambda x: backward.gru_scan_custom_vjp_in_loop(params, x, h0)[0], (x,), (jnp.ones_like(x),))


def test_one_dispatch_policy():
  resolve = dispatch.resolve_implementation
  assert resolve("auto", backend="cpu") is jaxgru.Implementation.CUSTOM_VJP_IN_LOOP
  assert resolve("auto", backend="gpu", hidden=64) is jaxgru.Implementation.CUSTOM_VJP  # Pallas never unmeasured
  assert resolve("auto", backend="cpu", remat="segments") is jaxgru.Implementation.SCAN
  assert resolve("auto", backend="gpu", recurrent_dropout=True) is jaxgru.Implementation.SCAN
  assert resolve("custom_vjp", backend="cpu") is jaxgru.Implementation.CUSTOM_VJP
  assert resolve("pallas", backend="gpu", hidden=64) is jaxgru.Implementation.PALLAS
  with pytest.raises(ValueError, match="recurrent_dropout needs implementation 'scan'"):
    resolve("custom_vjp_in_loop", recurrent_dropout=True)
  with pytest.raises(ValueError, match="GPU only .*backend is 'cpu'"):
    resolve("pallas", backend="cpu", hidden=64)
  with pytest.raises(ValueError, match="power of two .*H=96"):
    resolve("pallas", backend="gpu", hidden=96)
  with pytest.raises(ValueError, match="unknown GRU implementation 'fused'"):
    jaxgru.GRU(features=4, implementation="fused")
  with pytest.raises(ValueError, match="remat='step' needs implementation 'scan'"):
    jaxgru.GRU(features=4, implementation="custom_vjp", remat="step")
  with pytest.raises(ValueError, match="power of two"):
    jaxgru.GRU(features=4, implementation="pallas")
  layer = jaxgru.GRU(features=16, implementation="pallas")  # built anywhere, refused where it runs
  with pytest.raises(ValueError, match="GPU only"):
    layer.init(jax.random.key(0), jnp.ones((2, 3, 2)))
  with pytest.raises(ValueError, match="GPU only"):
    pallas_gru.gru_scan_pallas(helpers.direction_problem(0)[0], jnp.ones((6, 3, 12)), jnp.ones((3, 4)))


def test_import_does_not_load_pallas():
  import subprocess  # noqa: PLC0415
  import sys  # noqa: PLC0415

  code = "import sys, jaxgru; jaxgru.GRU(features=4); print('jax.experimental.pallas' in sys.modules)"
  out = subprocess.run(
    [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"JAX_PLATFORMS": "cpu", "PATH": ""}
  )
  assert out.stdout.strip() == "False"


# Episode resets in every runner, against each episode run separately (helpers.segments_reference).
# remat="segments" shares remat="step"'s block path (the restarts are cut into blocks the same way).
@pytest.mark.parametrize("name", [name for name in helpers.RUNNERS if name != "scan_remat_segments"])
def test_every_implementation_restarts_each_episode_in_both_directions(name):
  params, x, h0, h_reset = helpers.reset_problem()
  runner = helpers.RUNNERS[name]
  (_, outs), grads = _grad(runner)(params, x, h0, h_reset)
  for reverse, (ys, h_last) in zip((False, True), outs):
    ys_ref, h_ref = helpers.segments_reference(
      params, x, h0, h_reset, helpers.RESETS, helpers.RESET_LENGTHS, reverse=reverse
    )
    assert ys.shape == ys_ref.shape and ys.dtype == jnp.float32 and h_last.dtype == jnp.float32
    np.testing.assert_allclose(ys, ys_ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(h_last, h_ref, atol=1e-5, rtol=0)
  # Gradients against autodiff through the scan's loop (and that one against the cell under
  # nn.scan with hand-written resets, in test_the_recurrent_policy_recipe).
  _, grads_ref = _grad(helpers.RUNNERS["scan"])(params, x, h0, h_reset)
  helpers.assert_trees_close(grads, grads_ref, atol=1e-5)


WEIGHTS = np.random.default_rng(3).normal(size=(2, 6, 4, 4)).astype(np.float32)  # [D, T, B, H] on the outputs


def _loss(params, x, h0, h_reset, run):
  outs = [
    run(
      params,
      x,
      h0,
      reverse=rev,
      seq_lengths=jnp.asarray(helpers.RESET_LENGTHS),
      resets=helpers.RESETS,
      reset_carry=h_reset,
    )
    for rev in (False, True)
  ]
  return sum(jnp.sum(ys * w) + jnp.sum(jnp.sin(h)) for (ys, h), w in zip(outs, WEIGHTS)), outs


@functools.cache
def _grad(runner):
  """Jitted loss and gradients w.r.t. params, x, h0 and the reset state, both directions; compiled once per runner."""
  return jax.jit(jax.value_and_grad(functools.partial(_loss, run=runner), argnums=(0, 1, 2, 3), has_aux=True))


def test_without_resets_nothing_changes():
  params, x, h0, _ = helpers.reset_problem()
  for rev in (False, True):
    plain = dispatch.run_direction("auto", params, x, h0, reverse=rev, seq_lengths=helpers.RESET_LENGTHS)
    none = dispatch.run_direction(
      "auto", params, x, h0, reverse=rev, seq_lengths=helpers.RESET_LENGTHS, resets=np.zeros((6, 4), bool)
    )
    for a, b in zip(plain, none):
      np.testing.assert_array_equal(a, b)


def test_the_runners_check_resets_themselves():
  params, x, h0, _ = helpers.reset_problem()
  with pytest.raises(TypeError, match=r"resets must be a boolean array of shape \[T, B\]=\(6, 4\)"):
    backward.gru_scan_custom_vjp(params, jaxgru.gates.input_projection(params, x), h0, resets="yes")
  with pytest.raises(ValueError, match="reset_carry must have the shape of h0"):
    dispatch.run_direction("auto", params, x, h0, resets=helpers.RESETS, reset_carry=h0[:2])
