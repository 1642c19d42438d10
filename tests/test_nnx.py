"""jaxgru.nnx: the cell as a drop-in for flax.nnx.GRUCell, and the GRU / MinGRU layers against linen and PyTorch."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import helpers
import jaxgru
from jaxgru import interop

B, T, I, H = 3, 6, 4, 5
TOL = 1e-5


def _cells(seed=0, **options):
  """A flax.nnx.GRUCell with non-zero biases and a jaxgru.nnx.GRUCell computing the same function.

  Flax's nnx cell has ``dense_i`` (kernel ``[I, 3H]``, bias ``[3H]``) and
  ``dense_h`` (kernel ``[H, 3H]``, no bias): jaxgru's recurrent bias is zero.
  """
  theirs = nnx.GRUCell(I, H, rngs=nnx.Rngs(seed), **options)
  theirs.dense_i.bias[...] = 0.3 * jax.random.normal(jax.random.key(seed + 1), (3 * H,))
  ours = jaxgru.nnx.GRUCell(I, H, rngs=nnx.Rngs(seed + 2), **options)
  ours.input_kernel[...] = theirs.dense_i.kernel[...]
  ours.input_bias[...] = theirs.dense_i.bias[...]
  ours.recurrent_kernel[...] = theirs.dense_h.kernel[...]
  ours.recurrent_bias[...] = jnp.zeros(3 * H)
  return theirs, ours


@pytest.fixture(scope="module")
def x():
  return jax.random.normal(jax.random.key(7), (B, T, I))


@pytest.mark.parametrize(
  "options", [{}, {"reverse": True, "keep_order": True, "return_carry": True}], ids=["plain", "reverse_carry"]
)
def test_rnn_matches_flax_nnx_cell(x, options):
  theirs, ours = _cells()
  lengths = jnp.array([T, 2, 4])
  h0 = jax.random.normal(jax.random.key(3), (B, H))
  kw = dict(seq_lengths=lengths, initial_carry=h0)
  helpers.assert_trees_close(nnx.RNN(theirs, **options)(x, **kw), nnx.RNN(ours, **options)(x, **kw), atol=TOL)


def test_bidirectional_and_time_major_match_flax(x):
  theirs, ours = _cells()
  xs = jnp.swapaxes(x, 0, 1)  # [T, B, I]

  def bi(cell):
    return nnx.Bidirectional(nnx.RNN(cell, time_major=True), nnx.RNN(cell, time_major=True), time_major=True)

  y = bi(ours)(xs)
  assert y.shape == (T, B, 2 * H)
  helpers.assert_trees_close(bi(theirs)(xs), y, atol=TOL)


def test_nnx_scan_jit_and_gradients_match_flax(x):
  theirs, ours = _cells()

  @nnx.jit
  def loss(cell, xs):  # xs: [T, B, I]
    @nnx.scan(in_axes=(None, nnx.Carry, 0), out_axes=(nnx.Carry, 0))
    def body(cell, h, x_t):
      return cell(h, x_t)

    carry, ys = body(cell, jnp.zeros((B, H)), xs)
    return jnp.sum(ys**2) + jnp.sum(carry)

  xs = jnp.swapaxes(x, 0, 1)
  l_theirs, g_theirs = nnx.value_and_grad(loss, argnums=1)(theirs, xs)
  l_ours, g_ours = nnx.value_and_grad(loss, argnums=1)(ours, xs)
  np.testing.assert_allclose(l_ours, l_theirs, rtol=1e-6)
  np.testing.assert_allclose(g_ours, g_theirs, atol=TOL)


def test_nnx_vmap_over_a_model_axis_and_split_merge():
  @nnx.vmap(in_axes=0, out_axes=0)
  def make(key):
    return jaxgru.nnx.GRUCell(I, H, bias_init=nnx.initializers.normal(1.0), rngs=nnx.Rngs(params=key))

  cells = make(jax.random.split(jax.random.key(0), 2))
  assert cells.input_kernel.shape == (2, I, 3 * H)
  h = 0.1 * jnp.ones((2, B, H))
  xs = jax.random.normal(jax.random.key(4), (2, B, I))
  out = nnx.vmap(lambda cell, h, x: cell(h, x)[0], in_axes=(0, 0, 0))(cells, h, xs)
  graphdef, state = nnx.split(cells)
  for i in range(2):
    cell = nnx.merge(graphdef, jax.tree.map(lambda a, i=i: a[i], state))
    helpers.assert_trees_close(out[i], cell(h[i], xs[i])[0], atol=TOL)
  assert not jnp.allclose(out[0], out[1])


def test_every_weight_is_a_param_and_initializers_are_not_in_the_graph():
  a = jaxgru.nnx.GRUCell(I, H, rngs=nnx.Rngs(0))
  b = jaxgru.nnx.GRUCell(
    I,
    H,
    kernel_init=nnx.initializers.ones,
    recurrent_kernel_init=nnx.initializers.zeros,
    bias_init=nnx.initializers.ones,
    rngs=nnx.Rngs(0),
  )
  assert nnx.graphdef(a) == nnx.graphdef(b)
  params = nnx.state(a, nnx.Param).to_pure_dict()
  assert {k: v.shape for k, v in params.items()} == {
    "input_kernel": (I, 3 * H),
    "recurrent_kernel": (H, 3 * H),
    "input_bias": (3 * H,),
    "recurrent_bias": (3 * H,),
  }
  assert jax.tree.leaves(nnx.state(a, nnx.Not(nnx.Param))) == []
  np.testing.assert_array_equal(b.input_kernel[...], 1.0)
  carry = a.initialize_carry((2, 7, I), rngs=nnx.Rngs(0))
  assert carry.shape == (2, 7, H) and carry.dtype == jnp.float32
  np.testing.assert_array_equal(a.initialize_carry((I,), nnx.Rngs(1), carry_init=nnx.initializers.ones), np.ones(H))
  with pytest.raises(ValueError, match="initialize_carry needs rngs"):
    a.initialize_carry((I,), carry_init=nnx.initializers.normal())
  assert a.num_feature_axes == 1


def test_subclass_runs_in_nnx_rnn(x):
  class Doubled(jaxgru.nnx.GRUCell):
    def __call__(self, carry, inputs):
      h, _ = super().__call__(carry, inputs)
      return h, 2 * h

  cell = Doubled(I, H, rngs=nnx.Rngs(0))
  carry, y = nnx.RNN(cell, return_carry=True)(x)
  np.testing.assert_allclose(y[:, -1], 2 * carry, atol=1e-6)


class _Model(nnx.Module):
  def __init__(self, cell_type, rngs):
    self.rnn = nnx.RNN(cell_type(I, H, rngs=rngs))
    self.head = nnx.Linear(H, 1, rngs=rngs)

  def __call__(self, x):
    return self.head(self.rnn(x)[:, -1])[:, 0]


def test_swapping_the_cell_in_a_model_trains(x):
  """The Flax model with jaxgru.nnx.GRUCell in place of nnx.GRUCell trains with nnx.Optimizer."""
  model = _Model(jaxgru.nnx.GRUCell, nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, optax.adam(3e-2), wrt=nnx.Param)
  target = jnp.sum(x[:, :, 0], axis=1) / T

  @nnx.jit
  def train_step(model, optimizer):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean(jnp.square(m(x) - target)))(model)
    optimizer.update(model, grads)
    return loss

  with jax.numpy_dtype_promotion("standard"):  # optax's Adam raises a float to an int32 count
    losses = [float(train_step(model, optimizer)) for _ in range(8)]
  assert losses[-1] < 0.5 * losses[0], losses


def test_gru_equals_linen_and_round_trips_exactly(x):
  module = jaxgru.nnx.GRU(
    I, H, num_layers=2, bidirectional=True, bias_init=nnx.initializers.normal(0.5), rngs=nnx.Rngs(0)
  )
  layer, variables = interop.to_linen(module)
  lengths = jnp.array([T, 0, 3])
  helpers.assert_trees_close(module(x, seq_lengths=lengths), layer.apply(variables, x, seq_lengths=lengths), atol=TOL)
  back = interop.to_nnx(layer, variables, rngs=nnx.Rngs(1))
  jax.tree.map(np.testing.assert_array_equal, nnx.state(back, nnx.Param).to_pure_dict(), variables["params"])
  assert nnx.graphdef(back) == nnx.graphdef(module)
  linen_layer = jaxgru.GRU(H, time_major=True, remat="step", variant="reset_before")
  linen_vars = linen_layer.init(jax.random.key(2), jnp.swapaxes(x, 0, 1))
  from_linen = interop.to_nnx(linen_layer, linen_vars, rngs=nnx.Rngs(0))
  assert (from_linen.time_major, from_linen.remat, from_linen.variant) == (True, "step", "reset_before")
  helpers.assert_trees_close(
    from_linen(jnp.swapaxes(x, 0, 1)), linen_layer.apply(linen_vars, jnp.swapaxes(x, 0, 1)), atol=TOL
  )
  with pytest.raises(ValueError, match="to_nnx: variables hold parameters of shapes"):
    interop.to_nnx(jaxgru.GRU(H, num_layers=3), variables, rngs=nnx.Rngs(0))
  with pytest.raises(TypeError, match="to_linen expects a jaxgru.nnx.GRU, got GRU"):
    interop.to_linen(layer)


def test_gru_dropout_follows_train_and_eval(x):
  module = jaxgru.nnx.GRU(I, H, num_layers=2, dropout=0.5, recurrent_dropout=0.3, rngs=nnx.Rngs(0))
  module.eval()
  y_eval, _ = module(x)
  layer, variables = interop.to_linen(module)
  assert (layer.dropout, layer.recurrent_dropout) == (0.5, 0.3)
  helpers.assert_trees_close(y_eval, layer.apply(variables, x)[0], atol=TOL)  # deterministic: no dropout at all
  module.train()
  y1, _ = module(x)
  y2, _ = module(x)
  assert not jnp.allclose(y1, y_eval) and not jnp.allclose(y1, y2)  # fresh masks at every call


def test_mingru_equals_linen(x):
  module = jaxgru.nnx.MinGRU(
    I, H, num_layers=2, mode="log", candidate="g", bias_init=nnx.initializers.normal(0.5), rngs=nnx.Rngs(0)
  )
  linen = jaxgru.MinGRU(H, num_layers=2, mode="log", candidate="g")
  variables = {"params": nnx.state(module, nnx.Param).to_pure_dict()}
  lengths = jnp.array([T, 1, 4])
  y, h_n = module(x, seq_lengths=lengths)
  assert y.shape == (B, T, H) and h_n.shape == (2, B, H)
  helpers.assert_trees_close((y, h_n), linen.apply(variables, x, seq_lengths=lengths), atol=TOL)
  dropped = jaxgru.nnx.MinGRU(I, H, num_layers=2, dropout=0.5, rngs=nnx.Rngs(0))
  y_train, _ = dropped(x)
  dropped.eval()
  assert not jnp.allclose(y_train, dropped(x)[0])


def test_nnx_module_errors():
  with pytest.raises(ValueError, match="GRU num_layers must be a positive integer, got 0"):
    jaxgru.nnx.GRU(I, H, num_layers=0, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="GRU in_features must be a positive integer"):
    jaxgru.nnx.GRU(0, H, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="MinGRU mode='log' needs candidate='g'"):
    jaxgru.nnx.MinGRU(I, H, mode="log", rngs=nnx.Rngs(0))
  with pytest.raises(TypeError, match="GRUCell rngs must be an nnx.Rngs"):
    jaxgru.nnx.GRUCell(I, H, rngs=0)
  with pytest.raises(TypeError, match="GRU rngs must be an nnx.Rngs, such as nnx.Rngs\\(0\\); got int"):
    jaxgru.nnx.GRU(I, H, rngs=0)
  with pytest.raises(TypeError, match="MinGRU rngs must be an nnx.Rngs"):
    jaxgru.nnx.MinGRU(I, H, rngs=None)
  with pytest.raises(TypeError, match=r"from_torch\(api='nnx'\) needs rngs"):
    interop.from_torch(jaxgru.interop.to_torch(*interop.to_linen(jaxgru.nnx.GRU(I, H, rngs=nnx.Rngs(0)))), api="nnx")
  module = jaxgru.nnx.GRU(I, H, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="GRU got inputs with 3 features, but its parameters expect 4"):
    module(jnp.zeros((B, T, 3)))
  with pytest.raises(ValueError, match="GRUCell got inputs with 3 features, but its parameters expect 4"):
    jaxgru.nnx.GRUCell(I, H, rngs=nnx.Rngs(0))(jnp.zeros((B, H)), jnp.zeros((B, 3)))


def _flax_ramp():
  """The integer inputs of Flax's reverse and keep_order tests: ``[2, 5, 3]``, step t holds t."""
  ramp = jnp.tile(jnp.arange(5), (2, 1)).reshape(2, 5, 1)
  return jnp.concatenate([ramp, ramp, ramp], axis=-1)


# flax 0.12.8 tests/nnx/nn/recurrent_test.py feeds integer inputs in these four tests
# (test_rnn_reverse, test_rnn_with_keep_order, test_rnn_with_seq_lengths and the cell's
# test_lstm_with_variable_sequence_length), retargeted at jaxgru.nnx.GRUCell; each also checks
# the values against the same inputs as floats, which Flax's cells promote them to.
def _flax_integer_case(case, cell, dtype):
  if case == "reverse":
    return nnx.RNN(cell, reverse=True)(_flax_ramp().astype(dtype))
  if case == "keep_order":
    carry = cell.initialize_carry((2, 3), nnx.Rngs(0))
    return nnx.RNN(cell, reverse=True, keep_order=True)(_flax_ramp().astype(dtype), initial_carry=carry)
  if case == "seq_lengths":
    x = jnp.array([[[1] * 3, [2] * 3, [3] * 3, [0] * 3, [0] * 3], [[4] * 3, [5] * 3, [6] * 3, [7] * 3, [8] * 3]])
    carry = cell.initialize_carry((2, 3), nnx.Rngs(0))
    final, outputs = nnx.RNN(cell, return_carry=True)(
      x.astype(dtype), initial_carry=carry, seq_lengths=jnp.array([3, 5])
    )
    assert final.shape == (2, 4)
    return outputs
  x = jnp.array([[[1, 2, 3], [4, 5, 6], [0, 0, 0]], [[7, 8, 9], [10, 11, 12], [13, 14, 15]]]).astype(dtype)
  carry, outputs = cell.initialize_carry((2, 3)), []
  for t in range(x.shape[1]):  # the cell alone, step by step
    carry, y = cell(carry, x[:, t, :])
    outputs.append(y)
  mask = jnp.arange(3)[None, :] < jnp.array([2, 3])[:, None]
  return jnp.stack(outputs, axis=1) * mask[:, :, None].astype(jnp.float32)


@pytest.mark.parametrize("case", ["reverse", "keep_order", "seq_lengths", "cell_variable_length"])
def test_flax_nnx_recurrent_tests_with_integer_inputs(case):
  cell = jaxgru.nnx.GRUCell(3, 4, rngs=nnx.Rngs(3))
  outputs = _flax_integer_case(case, cell, jnp.int32)
  assert outputs.shape[0] == 2 and outputs.shape[-1] == 4 and outputs.dtype == jnp.float32
  np.testing.assert_allclose(outputs, _flax_integer_case(case, cell, jnp.float32), atol=1e-6, rtol=0)


def test_cells_take_a_single_carry_with_batched_inputs_as_flax():
  theirs, ours = _cells(4)
  h, x = jnp.full((H,), 0.5), jax.random.normal(jax.random.key(8), (B, I))
  with jax.numpy_rank_promotion("allow"):  # Flax broadcasts a [H] carry over the batch implicitly
    expected, _ = theirs(h, x)
  got, _ = ours(h, x)
  assert got.shape == (B, H)
  np.testing.assert_allclose(got, expected, atol=TOL, rtol=0)
  with pytest.raises(ValueError, match=r"GRUCell carry has shape \(2, 5\); expected \(3, 5\)"):
    ours(jnp.zeros((2, H)), x)
