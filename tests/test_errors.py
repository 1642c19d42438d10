"""Every bad input at the public boundary gets a clear error."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgru
from jaxgru import interop

B, T, I, H = 2, 4, 3, 5


@pytest.fixture(scope="module")
def model():
  layer = jaxgru.GRU(H, num_layers=2, bidirectional=True)
  return layer, layer.init(jax.random.key(0), jnp.zeros((B, T, I)))


@pytest.mark.parametrize(
  "kwargs,error,match",
  [
    (
      {"variant": "reset_middle"},
      ValueError,
      "unknown GRU variant 'reset_middle'; expected one of 'reset_after', 'reset_before'",
    ),
    ({"implementation": "cudnn"}, ValueError, "unknown GRU implementation 'cudnn'"),
    ({"num_layers": 0}, ValueError, "num_layers must be a positive integer"),
    ({"features": 2.5}, ValueError, "features must be a positive integer"),
    ({"dropout": 1.0}, ValueError, r"dropout must be in \[0, 1\)"),
    ({"unroll": 0}, ValueError, "unroll must be a positive integer"),
    ({"dtype": jnp.int32}, TypeError, "dtype must be a floating dtype"),
  ],
)
def test_bad_layer_options(kwargs, error, match):
  with pytest.raises(error, match=match):
    jaxgru.GRU(**{"features": H, **kwargs})


def test_bad_cell_options():
  with pytest.raises(ValueError, match="unknown GRU variant"):
    jaxgru.GRUCell(H, variant="nope")
  with pytest.raises(
    TypeError, match="param_dtype must be a floating dtype such as float32 or bfloat16, or a complex one"
  ):
    jaxgru.GRUCell(H, param_dtype=jnp.int8)


@pytest.mark.parametrize(
  "x,match",
  [
    (np.zeros((B, T, I, 1), np.float32), r"inputs must have rank 3 \[B, T, I\]"),
    (np.zeros((I,), np.float32), "inputs must have rank 3"),
    (np.zeros((B, T, I + 1), np.float32), "got inputs with 4 features, but its parameters expect 3"),
  ],
)
def test_bad_input_shapes(model, x, match):
  layer, variables = model
  with pytest.raises(ValueError, match=match):
    layer.apply(variables, x)


def test_integer_inputs_are_promoted_as_in_flax_and_extra_positionals_are_named(model):
  layer, variables = model
  x = np.arange(B * T * I).reshape(B, T, I) % 3
  for dtype in (np.int32, np.bool_):  # Flax's cells promote both to the parameter dtype
    got = layer.apply(variables, x.astype(dtype))
    jax.tree.map(np.testing.assert_array_equal, got, layer.apply(variables, x.astype(dtype).astype(np.float32)))
  with pytest.raises(TypeError, match="GRU inputs must be floating point, got complex64"):
    layer.apply(variables, np.zeros((B, T, I), np.complex64))
  with pytest.raises(TypeError, match="GRU takes only the inputs positionally; pass seq_lengths"):
    layer.apply(variables, np.zeros((B, T, I), np.float32), np.array([T, 1]))


@pytest.mark.parametrize(
  "lengths,error,match",
  [
    (np.array([1, 2, 3]), ValueError, r"seq_lengths must have shape \[B\]=\(2,\), got \(3,\)"),
    (np.array([[1, 2]]), ValueError, r"seq_lengths must have shape \[B\]"),
    (np.array([1.0, 2.0]), TypeError, "seq_lengths must have an integer dtype, got float64"),
    (np.array([-1, 2]), ValueError, r"seq_lengths must lie in \[0, T=4\], got values from -1 to 2"),
    (np.array([5, 2]), ValueError, r"seq_lengths must lie in \[0, T=4\]"),
    ("3", TypeError, "seq_lengths must be an integer array"),
  ],
)
def test_bad_seq_lengths(model, lengths, error, match):
  layer, variables = model
  with pytest.raises(error, match=match):
    layer.apply(variables, np.zeros((B, T, I), np.float32), seq_lengths=lengths)


def test_bad_initial_carry(model):
  layer, variables = model
  with pytest.raises(ValueError, match=r"initial_carry must have shape \[L\*D, B, H\]=\(4, 2, 5\) .* got \(2, 2, 5\)"):
    layer.apply(variables, np.zeros((B, T, I), np.float32), initial_carry=np.zeros((2, B, H)))


def test_bad_cell_carry():
  cell = jaxgru.GRUCell(H)
  with pytest.raises(ValueError, match=r"GRUCell carry has shape \(2, 4\); expected \(2, 5\)"):
    cell.init(jax.random.key(0), jnp.zeros((2, 4)), jnp.zeros((2, I)))


def _state_dict(layers=1, reverse=False):
  sd = {}
  for l in range(layers):
    for suffix in ["", "_reverse"] if reverse else [""]:
      inp = I if l == 0 else H * (2 if reverse else 1)
      sd[f"weight_ih_l{l}{suffix}"] = np.zeros((3 * H, inp))
      sd[f"weight_hh_l{l}{suffix}"] = np.zeros((3 * H, H))
      sd[f"bias_ih_l{l}{suffix}"] = np.zeros(3 * H)
      sd[f"bias_hh_l{l}{suffix}"] = np.zeros(3 * H)
  return sd


def test_state_dict_errors():
  sd = _state_dict(layers=2, reverse=True)
  layer, variables = interop.from_torch(sd)
  assert layer.num_layers == 2 and layer.bidirectional and layer.features == H

  missing = dict(sd)
  del missing["weight_hh_l1_reverse"]
  with pytest.raises(ValueError, match=r"missing \['weight_hh_l1_reverse'\]"):
    interop.from_torch(missing)
  extra = dict(sd, weight_foo=np.zeros(3))
  with pytest.raises(ValueError, match="unexpected entry 'weight_foo'"):
    interop.from_torch(extra)
  half_bias = dict(sd)
  del half_bias["bias_hh_l1"]
  with pytest.raises(ValueError, match=r"missing \['bias_hh_l1'\]"):
    interop.from_torch(half_bias)
  bad_shape = dict(sd, weight_ih_l1=np.zeros((3 * H, 7)))
  with pytest.raises(ValueError, match=r"'weight_ih_l1' must have shape \(15, 10\), got \(15, 7\)"):
    interop.from_torch(bad_shape)
  with pytest.raises(ValueError, match="must have shape"):
    interop.from_torch(dict(sd, bias_ih_l0=np.zeros(4)))
  with pytest.raises(ValueError, match="state dict is empty"):
    interop.from_torch({})
  with pytest.raises(TypeError, match="expects a torch.nn.GRU, a torch.nn.GRUCell or a state dict"):
    interop.from_torch([1, 2])


def test_to_torch_errors(model):
  layer, variables = model
  with pytest.raises(ValueError, match="only the 'reset_after' variant"):
    interop.to_torch(jaxgru.GRU(H, num_layers=2, bidirectional=True, variant="reset_before"), variables)
  with pytest.raises(ValueError, match="but the layer expects"):
    interop.to_torch(jaxgru.GRU(H), variables)


def test_flax_cell_conversion_errors():
  with pytest.raises(ValueError, match=r"missing \['recurrent_bias'\]"):
    interop.to_flax_cell({"input_kernel": 0, "recurrent_kernel": 0, "input_bias": 0})
  with pytest.raises(ValueError, match=r"from_flax_cell\['hn'\]: parameters missing \['bias'\]"):
    interop.from_flax_cell(
      {g: {"kernel": 0, "bias": 0} for g in ("ir", "iz", "in")} | {g: {"kernel": 0} for g in ("hr", "hz", "hn")}
    )
