"""jaxgru.GRU and jaxgru.nnx.GRU against torch.nn.GRU on the same random weights (through interop.from_torch)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import helpers
import jaxgru
from jaxgru import interop

torch = pytest.importorskip("torch")

B, T, I, H = 3, 7, 4, 5
TOL = 1e-5


def _linen_loss(problem):
  """``(params, loss(params, x, h0), to_torch(param_grads))`` for ``jaxgru.GRU`` built from the torch module."""
  layer, variables = interop.from_torch(problem.gru)
  assert (layer.num_layers, layer.bidirectional, layer.features, layer.time_major) == (
    problem.gru.num_layers,
    problem.gru.bidirectional,
    H,
    False,
  )

  def loss(params, x, h0):
    y, h_n = layer.apply({"params": params}, x, seq_lengths=problem.lengths, initial_carry=h0)
    return problem.loss(y, h_n), (y, h_n)

  return variables["params"], loss, lambda grads: interop.to_torch(layer, {"params": grads})


def _nnx_loss(problem):
  """The same for ``jaxgru.nnx.GRU``: its ``nnx.Param`` state is what gets differentiated."""
  module = interop.from_torch(problem.gru, api="nnx", rngs=nnx.Rngs(0))
  assert isinstance(module, jaxgru.nnx.GRU) and module.time_major is False
  graphdef, params, rest = nnx.split(module, nnx.Param, ...)

  def loss(params, x, h0):
    y, h_n = nnx.merge(graphdef, params, rest)(x, seq_lengths=problem.lengths, initial_carry=h0)
    return problem.loss(y, h_n), (y, h_n)

  layer, _ = interop.to_linen(module)
  return params, loss, lambda grads: interop.to_torch(layer, {"params": grads.to_pure_dict()})


@pytest.mark.parametrize("api", ["linen", "nnx"])
@pytest.mark.parametrize("num_layers,bidirectional,with_lengths,with_h0", helpers.TORCH_CASES)
def test_matches_torch_outputs_state_and_gradients(api, num_layers, bidirectional, with_lengths, with_h0):
  problem = helpers.torch_problem(
    num_layers, bidirectional, with_lengths, with_h0, batch=B, steps=T, features=I, hidden=H
  )
  params, loss, to_torch = (_linen_loss if api == "linen" else _nnx_loss)(problem)
  h0 = None if problem.h0 is None else jnp.asarray(problem.h0)
  grads, outputs = jax.jit(jax.grad(loss, argnums=(0, 1, 2), has_aux=True))(params, jnp.asarray(problem.x), h0)
  helpers.assert_matches_torch(problem, outputs, grads[1:], to_torch(grads[0]), atol=TOL)


def test_to_torch_round_trip(key):
  layer = jaxgru.GRU(H, num_layers=2, bidirectional=True)
  x = jax.random.normal(key, (B, T, I))
  variables = layer.init(jax.random.key(1), x)
  state = interop.to_torch(layer, variables)
  gru = torch.nn.GRU(I, H, num_layers=2, bidirectional=True, batch_first=True)
  gru.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})  # strict by default
  y_t, h_t = gru(torch.from_numpy(np.array(x)))
  y, h = layer.apply(variables, x)
  np.testing.assert_allclose(y, y_t.detach().numpy(), atol=TOL, rtol=0)
  np.testing.assert_allclose(h, h_t.detach().numpy(), atol=TOL, rtol=0)
  # And back: the same parameters, bit for bit.
  layer2, variables2 = interop.from_torch(state)
  assert layer2.bidirectional and layer2.num_layers == 2
  jax.tree.map(np.testing.assert_array_equal, variables2, jax.device_get(variables))


def test_time_major_module_and_no_bias():
  torch.manual_seed(0)
  gru = torch.nn.GRU(I, H, num_layers=2, bias=False)  # batch_first=False: [T, B, I]
  layer, variables = interop.from_torch(gru)
  assert layer.time_major
  x = np.random.default_rng(0).normal(size=(T, B, I)).astype(np.float32)
  y_t, h_t = gru(torch.from_numpy(x))
  y, h = layer.apply(variables, x)
  assert y.shape == (T, B, H)
  np.testing.assert_allclose(y, y_t.detach().numpy(), atol=TOL, rtol=0)
  np.testing.assert_allclose(h, h_t.detach().numpy(), atol=TOL, rtol=0)


def test_unbatched_input_matches_torch():
  torch.manual_seed(1)
  gru = torch.nn.GRU(I, H, bidirectional=True, batch_first=True)
  layer, variables = interop.from_torch(gru)
  x = np.random.default_rng(1).normal(size=(T, I)).astype(np.float32)
  y_t, h_t = gru(torch.from_numpy(x))
  y, h = layer.apply(variables, x)
  assert y.shape == (T, 2 * H) and h.shape == (2, H)
  np.testing.assert_allclose(y, y_t.detach().numpy(), atol=TOL, rtol=0)
  np.testing.assert_allclose(h, h_t.detach().numpy(), atol=TOL, rtol=0)


def test_from_torch_does_not_import_torch(tmp_path):
  """A NumPy state dict converts in a process where torch cannot be imported."""
  import subprocess
  import sys
  import textwrap

  code = textwrap.dedent(
    """
      import sys
      sys.modules["torch"] = None  # any `import torch` now raises ImportError
      import numpy as np
      from jaxgru import interop
      H, I = 2, 3
      sd = {"weight_ih_l0": np.ones((3 * H, I)), "weight_hh_l0": np.ones((3 * H, H)),
            "bias_ih_l0": np.zeros(3 * H), "bias_hh_l0": np.zeros(3 * H)}
      layer, variables = interop.from_torch(sd)
      print(layer.features, variables["params"]["layer_0"]["input_kernel"].shape)
      """
  )
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.split() == ["2", "(3,", "6)"]
