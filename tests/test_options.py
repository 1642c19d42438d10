"""Options users bring from PyTorch, Flax and Keras: use_bias, per-gate initializers, half precision,
gate_fn / activation_fn, complex inputs, strict booleans, and PyTorch's GRUCell."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import helpers
import jaxgru
from jaxgru import interop

torch = pytest.importorskip("torch")

B, T, I, H = 3, 5, 4, 6
TOL = 1e-5


def _x(shape=(B, T, I), seed=0):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("api", ["linen", "nnx"])
def test_torch_bias_false_round_trips_without_biases(api):
  torch.manual_seed(0)
  gru = torch.nn.GRU(I, H, num_layers=2, bidirectional=True, bias=False, batch_first=True)
  x = _x()
  y_t, h_t = (a.detach().numpy() for a in gru(torch.from_numpy(x)))
  if api == "nnx":
    module = interop.from_torch(gru, api="nnx", rngs=nnx.Rngs(0))
    assert module.use_bias is False and not hasattr(module.layer_0, "input_bias")
    y, h = module(x)
    state = interop.to_torch(module)
  else:
    layer, variables = interop.from_torch(gru)
    assert layer.use_bias is False and sorted(variables["params"]["layer_1_reverse"]) == [
      "input_kernel",
      "recurrent_kernel",
    ]
    y, h = layer.apply(variables, x)
    state = interop.to_torch(layer, variables)
  np.testing.assert_allclose(y, y_t, atol=TOL, rtol=0)
  np.testing.assert_allclose(h, h_t, atol=TOL, rtol=0)
  again = torch.nn.GRU(I, H, num_layers=2, bidirectional=True, bias=False, batch_first=True)
  again.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})  # strict
  np.testing.assert_allclose(again(torch.from_numpy(x))[0].detach().numpy(), y_t, atol=TOL, rtol=0)


def test_cells_without_bias_have_no_bias_parameters():
  params = jaxgru.GRUCell(H, use_bias=False).init(jax.random.key(0), jnp.zeros((B, H)), jnp.zeros((B, I)))["params"]
  assert sorted(params) == ["input_kernel", "recurrent_kernel"]
  cell = jaxgru.nnx.GRUCell(I, H, use_bias=False, rngs=nnx.Rngs(0))
  assert sorted(nnx.state(cell, nnx.Param).to_pure_dict()) == ["input_kernel", "recurrent_kernel"]
  h_linen, _ = jaxgru.GRUCell(H, use_bias=False).apply(
    {"params": nnx.state(cell, nnx.Param).to_pure_dict()}, jnp.ones((B, H)), _x((B, I))
  )
  np.testing.assert_allclose(cell(jnp.ones((B, H)), _x((B, I)))[0], h_linen, atol=1e-6)


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("api", ["linen", "nnx"])
def test_from_torch_gru_cell(api, use_bias):
  torch.manual_seed(1)
  torch_cell = torch.nn.GRUCell(I, H, bias=use_bias)
  x, h = _x((B, I), 1), _x((B, H), 2)
  expected = torch_cell(torch.from_numpy(x), torch.from_numpy(h)).detach().numpy()
  if api == "nnx":
    cell = interop.from_torch(torch_cell, api="nnx", rngs=nnx.Rngs(0))
    assert isinstance(cell, jaxgru.nnx.GRUCell) and cell.use_bias is use_bias
    new_h, y = cell(jnp.asarray(h), jnp.asarray(x))
  else:
    cell, variables = interop.from_torch(torch_cell.state_dict())
    assert isinstance(cell, jaxgru.GRUCell) and cell.use_bias is use_bias
    new_h, y = cell.apply(variables, h, x)
  np.testing.assert_allclose(new_h, expected, atol=TOL, rtol=0)
  np.testing.assert_array_equal(new_h, y)


def test_from_torch_names_an_unexpected_key_and_refuses_other_cells():
  state = torch.nn.GRU(I, H, num_layers=2).state_dict()
  state["weight_ih_l7"] = torch.zeros(3 * H, H)
  with pytest.raises(ValueError, match=r"unexpected key\(s\) \['weight_ih_l7'\]; it holds layers 0 to 1"):
    interop.from_torch(state)
  with pytest.raises(ValueError, match="expects a torch.nn.GRU or torch.nn.GRUCell, got a LSTMCell"):
    interop.from_torch(torch.nn.LSTMCell(I, H))
  with pytest.raises(ValueError, match="unexpected entry 'weight_ih_l0' in GRUCell state dict"):
    interop.from_torch(dict(torch.nn.GRUCell(I, H).state_dict(), weight_ih_l0=np.zeros((3 * H, I))))


def _recording(init, calls):
  def record(key, shape, dtype=jnp.float32):
    calls.append(tuple(shape))
    return init(key, shape, dtype)

  return record


def _init_kwargs(calls):
  return dict(
    kernel_init=_recording(nn.initializers.lecun_normal(), calls),
    recurrent_kernel_init=_recording(nn.initializers.orthogonal(), calls),
    bias_init=_recording(nn.initializers.normal(1.0), calls),
  )


@pytest.mark.parametrize("api", ["linen_cell", "linen_gru", "nnx_cell", "nnx_gru"])
def test_initializers_are_applied_per_gate(api):
  calls = []
  if api == "linen_cell":
    params = jaxgru.GRUCell(H, **_init_kwargs(calls)).init(jax.random.key(0), jnp.zeros((B, H)), jnp.zeros((B, I)))[
      "params"
    ]
  elif api == "linen_gru":
    params = jaxgru.GRU(H, **_init_kwargs(calls)).init(jax.random.key(0), jnp.zeros((B, T, I)))["params"]["layer_0"]
  elif api == "nnx_cell":
    params = nnx.state(jaxgru.nnx.GRUCell(I, H, **_init_kwargs(calls), rngs=nnx.Rngs(0)), nnx.Param).to_pure_dict()
  else:
    params = nnx.state(jaxgru.nnx.GRU(I, H, **_init_kwargs(calls), rngs=nnx.Rngs(0)), nnx.Param).to_pure_dict()[
      "layer_0"
    ]
  assert sorted(calls) == sorted([(I, H)] * 3 + [(H, H)] * 3 + [(H,)] * 6)
  for block in jnp.split(params["recurrent_kernel"], 3, axis=-1):  # a user's orthogonal(): one per gate
    np.testing.assert_allclose(block.T @ block, np.eye(H), atol=1e-5)
  assert params["input_kernel"].shape == (I, 3 * H) and params["recurrent_bias"].shape == (3 * H,)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_parameters_initialize_on_cpu(dtype):
  linen = jaxgru.GRU(H, param_dtype=dtype).init(jax.random.key(0), jnp.zeros((B, T, I), dtype))["params"]["layer_0"]
  cell = jaxgru.GRUCell(H, param_dtype=dtype).init(
    jax.random.key(0), jnp.zeros((B, H), dtype), jnp.zeros((B, I), dtype)
  )
  module = jaxgru.nnx.GRU(I, H, param_dtype=dtype, rngs=nnx.Rngs(0))
  for params in (linen, cell["params"], nnx.state(module, nnx.Param).to_pure_dict()["layer_0"]):
    assert {a.dtype for a in params.values()} == {jnp.dtype(dtype)}
    block = params["recurrent_kernel"][:, :H].astype(jnp.float32)
    np.testing.assert_allclose(block.T @ block, np.eye(H), atol=2e-2)  # rounded from a float32 orthogonal block
  y, _ = module(jnp.ones((B, T, I), dtype))
  assert y.dtype == jnp.dtype(dtype) and bool(jnp.all(jnp.isfinite(y)))
  # Every module initializes half precision the same way (linen's MinGRU raised on orthogonal()).
  orthogonal = nn.initializers.orthogonal()
  linen_min = jaxgru.MinGRU(H, param_dtype=dtype, kernel_init=orthogonal).init(
    jax.random.key(0), jnp.zeros((B, T, I), dtype)
  )
  nnx_min = jaxgru.nnx.MinGRU(I, H, param_dtype=dtype, kernel_init=orthogonal, rngs=nnx.Rngs(0))
  for kernel in (linen_min["params"]["layer_0"]["kernel"], nnx_min.layer_0.kernel[...]):
    assert kernel.dtype == jnp.dtype(dtype) and kernel.shape == (I, 2 * H)


def _flax_linen_pair(**activations):
  """Flax's linen GRUCell with random parameters, and jaxgru's parameters computing the same function."""
  theirs = nn.GRUCell(H, **activations)
  params = theirs.init(jax.random.key(0), jnp.zeros((B, H)), jnp.zeros((B, I)))["params"]
  params = helpers.perturbed(params, jax.random.key(1))
  return theirs, params, interop.from_flax_cell(params)


ACTIVATIONS = dict(gate_fn=jax.nn.hard_sigmoid, activation_fn=jax.nn.soft_sign)


def test_gate_fn_and_activation_fn_match_flax():
  theirs, flax_params, ours = _flax_linen_pair(**ACTIVATIONS)
  h, x = jnp.asarray(_x((B, H), 3)), jnp.asarray(_x((B, I), 4))
  expected, _ = theirs.apply({"params": flax_params}, h, x)
  default, _ = nn.GRUCell(H).apply({"params": flax_params}, h, x)
  assert not np.allclose(expected, default)
  np.testing.assert_allclose(jaxgru.GRUCell(H, **ACTIVATIONS).apply({"params": ours}, h, x)[0], expected, atol=TOL)
  cell = jaxgru.nnx.GRUCell(I, H, **ACTIVATIONS, rngs=nnx.Rngs(0))
  nnx.update(cell, nnx.State(jax.tree.map(jnp.asarray, ours)))
  np.testing.assert_allclose(cell(h, x)[0], expected, atol=TOL)


def test_custom_activations_run_on_the_scan_and_explicit_others_are_refused():
  assert jaxgru.resolve_implementation("auto", backend="cpu", custom_gates=True) is jaxgru.Implementation.SCAN
  with pytest.raises(
    ValueError, match="gate_fn or activation_fn other than sigmoid and tanh needs implementation 'scan'"
  ):
    jaxgru.GRU(H, implementation="custom_vjp", **ACTIVATIONS)
  with pytest.raises(ValueError, match="needs implementation 'scan'"):
    jaxgru.nnx.GRU(I, H, implementation="custom_vjp_in_loop", gate_fn=jax.nn.hard_sigmoid, rngs=nnx.Rngs(0))
  layer = jaxgru.GRU(H, **ACTIVATIONS)
  x = jnp.asarray(_x())
  variables = layer.init(jax.random.key(0), x)
  y, _ = layer.apply(variables, x)
  cell = jaxgru.GRUCell(H, **ACTIVATIONS)
  y_cell = nn.RNN(cell).apply({"params": {"cell": variables["params"]["layer_0"]}}, x)
  np.testing.assert_allclose(y, y_cell, atol=1e-6)
  assert not np.allclose(y, jaxgru.GRU(H).apply(variables, x)[0])


def test_complex_inputs_give_a_complex_carry_as_flax():
  _, flax_params, ours = _flax_linen_pair()
  rng = np.random.default_rng(5)
  x = jnp.asarray(rng.normal(size=(B, I)) + 1j * rng.normal(size=(B, I)), jnp.complex64)
  h = jnp.asarray(_x((B, H), 6))
  with jax.numpy_dtype_promotion("standard"):  # Flax's own cell promotes float32 and complex64 implicitly
    expected, _ = nn.GRUCell(H).apply({"params": flax_params}, h, x)
  assert expected.dtype == jnp.complex64
  got, _ = jaxgru.GRUCell(H).apply({"params": ours}, h, x)
  assert got.dtype == jnp.complex64
  np.testing.assert_allclose(got, expected, atol=TOL)
  cell = jaxgru.nnx.GRUCell(I, H, rngs=nnx.Rngs(0))
  nnx.update(cell, nnx.State(jax.tree.map(jnp.asarray, ours)))
  got, _ = cell(h, x)
  assert got.dtype == jnp.complex64
  np.testing.assert_allclose(got, expected, atol=TOL)
  complex_cell = jaxgru.nnx.GRUCell(I, H, param_dtype=jnp.complex64, rngs=nnx.Rngs(0))
  assert complex_cell.recurrent_kernel.dtype == jnp.complex64
  carry = complex_cell.initialize_carry((B, I))
  assert complex_cell(carry, x)[0].dtype == jnp.complex64
  with pytest.raises(TypeError, match="GRU inputs must be floating point, got complex64"):
    jaxgru.nnx.GRU(I, H, rngs=nnx.Rngs(0))(jnp.zeros((B, T, I), jnp.complex64))


ZERO_PARAMS = {
  "input_kernel": jnp.zeros((I, 3 * H)),
  "recurrent_kernel": jnp.zeros((H, 3 * H)),
  "input_bias": jnp.zeros(3 * H),
  "recurrent_bias": jnp.zeros(3 * H),
}
BAD_BOOLS = ["False", 0, 1, None]
BOOL_OPTIONS = {
  "GRU time_major": lambda v: jaxgru.GRU(H, time_major=v),
  "GRU bidirectional": lambda v: jaxgru.GRU(H, bidirectional=v),
  "GRU use_bias": lambda v: jaxgru.GRU(H, use_bias=v),
  "MinGRU time_major": lambda v: jaxgru.MinGRU(H, time_major=v),
  "GRUCell use_bias": lambda v: jaxgru.GRUCell(H, use_bias=v),
  "nnx GRU time_major": lambda v: jaxgru.nnx.GRU(I, H, time_major=v, rngs=nnx.Rngs(0)),
  "nnx GRU bidirectional": lambda v: jaxgru.nnx.GRU(I, H, bidirectional=v, rngs=nnx.Rngs(0)),
  "nnx GRU use_bias": lambda v: jaxgru.nnx.GRU(I, H, use_bias=v, rngs=nnx.Rngs(0)),
  "nnx MinGRU time_major": lambda v: jaxgru.nnx.MinGRU(I, H, time_major=v, rngs=nnx.Rngs(0)),
  "nnx GRUCell use_bias": lambda v: jaxgru.nnx.GRUCell(I, H, use_bias=v, rngs=nnx.Rngs(0)),
  "reverse": lambda v: jaxgru.gru_scan(ZERO_PARAMS, jnp.zeros((T, B, 3 * H)), jnp.zeros((B, H)), reverse=v),
  "from_keras reset_after": lambda v: interop.from_keras([np.zeros((I, 3 * H)), np.zeros((H, 3 * H))], reset_after=v),
}


# reset_after=None is valid: it means "read it from the Keras layer".
BOOL_CASES = [(o, v) for o in BOOL_OPTIONS for v in BAD_BOOLS if (o, v) != ("from_keras reset_after", None)]


@pytest.mark.parametrize("option,value", BOOL_CASES, ids=[f"{o}={v!r}" for o, v in BOOL_CASES])
def test_boolean_options_must_be_bools(option, value):
  with pytest.raises(TypeError, match=f"^{option.removeprefix('nnx ')} must be a bool"):
    BOOL_OPTIONS[option](value)
