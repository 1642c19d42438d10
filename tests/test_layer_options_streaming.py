"""Layer options for running and importing: streaming in chunks and single steps, and Keras weights (from_keras)."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgru
from jaxgru import interop
from layer_options_helpers import B
from layer_options_helpers import H
from layer_options_helpers import I
from layer_options_helpers import inputs as _inputs
from layer_options_helpers import random_variables as _random_variables

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
  zero_biases = {"input_bias": jnp.zeros(3 * H), "recurrent_bias": jnp.zeros(3 * H)}  # use_bias=False: none kept
  h1 = jaxgru.gru_step({**zero_biases, **variables["params"]["layer_0"]}, jnp.zeros((B, H)), x[:, 0], layer.variant)
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
