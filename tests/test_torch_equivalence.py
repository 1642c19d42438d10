"""jaxgru.GRU against torch.nn.GRU on the same random weights (through interop.from_torch)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgru
from jaxgru import interop

torch = pytest.importorskip("torch")

B, T, I, H = 3, 7, 4, 5
TOL = 1e-5


def _torch_run(gru, x, lengths, h0):
  """Runs torch's GRU batch-first, packing when lengths are given; returns (y, h_n)."""
  xt = torch.from_numpy(x).requires_grad_(True)
  h0t = None if h0 is None else torch.from_numpy(h0).requires_grad_(True)
  if lengths is None:
    y, h_n = gru(xt, h0t)
  else:
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        xt, torch.from_numpy(lengths), batch_first=True, enforce_sorted=False
    )
    y, h_n = gru(packed, h0t)
    y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
  return xt, h0t, y, h_n


CASES = list(itertools.product([1, 2, 3], [False, True], [False, True], [False, True]))


@pytest.mark.parametrize("num_layers,bidirectional,with_lengths,with_h0", CASES)
def test_matches_torch_outputs_state_and_gradients(num_layers, bidirectional, with_lengths, with_h0):
  torch.manual_seed(num_layers * 8 + bidirectional * 4 + with_lengths * 2 + with_h0)
  rng = np.random.default_rng(num_layers)
  gru = torch.nn.GRU(I, H, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)
  D = 2 if bidirectional else 1
  x = rng.normal(size=(B, T, I)).astype(np.float32)
  lengths = np.array([T, 1, 4], np.int64) if with_lengths else None
  h0 = rng.normal(size=(num_layers * D, B, H)).astype(np.float32) if with_h0 else None
  # Random cotangents make the loss sensitive to every output and state element.
  gy = rng.normal(size=(B, T, D * H)).astype(np.float32)
  gh = rng.normal(size=(num_layers * D, B, H)).astype(np.float32)

  xt, h0t, y_t, hn_t = _torch_run(gru, x, lengths, h0)
  loss_t = (y_t * torch.from_numpy(gy)).sum() + (hn_t * torch.from_numpy(gh)).sum()
  loss_t.backward()

  layer, variables = interop.from_torch(gru)
  assert (layer.num_layers, layer.bidirectional, layer.features) == (num_layers, bidirectional, H)
  assert layer.time_major is False

  def loss(params, x, h0):
    y, h_n = layer.apply({"params": params}, x, seq_lengths=lengths, initial_carry=h0)
    return jnp.sum(y * gy) + jnp.sum(h_n * gh), (y, h_n)

  grad_fn = jax.grad(loss, argnums=(0, 1, 2), has_aux=True)
  (g_params, g_x, g_h0), (y, h_n) = grad_fn(variables["params"], jnp.asarray(x), None if h0 is None else jnp.asarray(h0))

  assert y.shape == (B, T, D * H) and y.dtype == jnp.float32
  assert h_n.shape == (num_layers * D, B, H) and h_n.dtype == jnp.float32
  np.testing.assert_allclose(y, y_t.detach().numpy(), atol=TOL, rtol=0)
  np.testing.assert_allclose(h_n, hn_t.detach().numpy(), atol=TOL, rtol=0)
  np.testing.assert_allclose(g_x, xt.grad.numpy(), atol=TOL, rtol=0)
  if with_h0:
    np.testing.assert_allclose(g_h0, h0t.grad.numpy(), atol=TOL, rtol=0)
  torch_grads = {name: p.grad.numpy() for name, p in gru.named_parameters()}
  jax_grads = interop.to_torch(layer, {"params": g_params})
  assert set(jax_grads) == set(torch_grads)
  for name, g in torch_grads.items():
    np.testing.assert_allclose(jax_grads[name], g, atol=TOL, rtol=0, err_msg=name)


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
