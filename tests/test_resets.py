"""Episode resets inside the layer (recurrent policies): the layers, MinGRU, the RL recipe (each runner: test_internal_runners.py).

The reference semantics, checked independently of jaxgru's loop: a sequence
with resets is a chain of episodes, and each direction runs each episode on its
own (float64 NumPy, :func:`helpers.segments_reference`), the forward direction's first
episode from the initial state and the others from the reset state; the
reverse direction's last episode from the initial state and the others from
the reset state.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

import helpers
import jaxgru
from jaxgru import mingru


@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_layer_equals_each_episode_run_separately(data):
  resets = np.array(data.draw(st.lists(st.booleans(), min_size=15, max_size=15)), bool).reshape(3, 5)  # [B, T]
  lengths = np.array(data.draw(st.lists(st.integers(0, 5), min_size=3, max_size=3)))
  variables, x, h0 = _bidirectional_layer()
  ys, h_n = _apply_bidirectional(variables, x, h0, resets, lengths)
  for d, name in enumerate(("layer_0", "layer_0_reverse")):
    p = variables["params"][name]
    ys_ref, h_ref = helpers.segments_reference(
      p, np.swapaxes(x, 0, 1), h0[d], h0[d], resets.T, lengths, reverse=bool(d)
    )
    np.testing.assert_allclose(np.swapaxes(ys, 0, 1)[..., d * 3 : (d + 1) * 3], ys_ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(h_n[d], h_ref, atol=1e-5, rtol=0)


@functools.cache
def _bidirectional_layer():
  gru = jaxgru.GRU(features=3, bidirectional=True)
  x = jax.random.normal(jax.random.key(1), (3, 5, 2))  # [B, T, I]
  variables = helpers.perturbed(gru.init(jax.random.key(0), x), jax.random.key(2))
  return variables, x, 0.5 * jax.random.normal(jax.random.key(3), (2, 3, 3))


@jax.jit
def _apply_bidirectional(variables, x, h0, resets, lengths):
  return jaxgru.GRU(features=3, bidirectional=True).apply(
    variables, x, initial_carry=h0, resets=resets, seq_lengths=lengths
  )


class ScannedRNN(nn.Module):
  """purejaxrl's recurrent policy core: a cell under ``nn.scan``, reset to zeros where an episode starts."""

  cell: type = nn.GRUCell

  @functools.partial(nn.scan, variable_broadcast="params", in_axes=0, out_axes=0, split_rngs={"params": False})
  @nn.compact
  def __call__(self, carry, inputs):
    x, resets = inputs  # [B, I], [B]
    carry = jnp.where(resets[:, None], jnp.zeros_like(carry), carry)
    return self.cell(features=carry.shape[-1])(carry, x)


def test_the_recurrent_policy_recipe():
  """The README's recipe: one jaxgru.GRU call over a rollout equals the cell under nn.scan, and steps equal the rollout."""
  steps, batch, features, hidden = 8, 3, 2, 4
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(steps, batch, features)), jnp.float32)  # [T, B, I], as purejaxrl
  dones = jnp.asarray(rng.random((steps, batch)) < 0.25).at[0, 0].set(True)  # [T, B]
  h = jnp.asarray(rng.normal(size=(batch, hidden)), jnp.float32)  # carried over from the last rollout
  gru = jaxgru.GRU(features=hidden, time_major=True)
  zeros = jnp.zeros((1, batch, hidden))

  def layer_loss(variables, x, h):
    ys, h_n = gru.apply(variables, x, initial_carry=h[None], resets=dones, reset_carry=zeros)
    return jnp.sum(jnp.sin(ys)) + jnp.sum(h_n), (ys, h_n[0])

  def scanned_loss(cell_type, variables, x, h):
    h_n, ys = ScannedRNN(cell_type).apply(variables, h, (x, dones))
    return jnp.sum(jnp.sin(ys)) + jnp.sum(h_n), (ys, h_n)

  variables = helpers.perturbed(gru.init(jax.random.key(0), x), jax.random.key(1))
  grad = lambda f: jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2), has_aux=True))  # noqa: E731
  (_, (ys, h_n)), grads = grad(layer_loss)(variables, x, h)
  # jaxgru's cell under nn.scan, on the layer's weights: same outputs and gradients, parameters included.
  cell_vars = {"params": {"GRUCell_0": variables["params"]["layer_0"]}}
  (_, (ys_c, h_c)), grads_c = grad(functools.partial(scanned_loss, jaxgru.GRUCell))(cell_vars, x, h)
  helpers.assert_trees_close((ys, h_n), (ys_c, h_c), atol=1e-5)
  helpers.assert_trees_close(grads[1:], grads_c[1:], atol=1e-5)
  helpers.assert_trees_close(grads[0]["params"]["layer_0"], grads_c[0]["params"]["GRUCell_0"], atol=1e-5)
  # Flax's own cell with the same weights: same outputs and input gradients.
  flax_cell = jaxgru.interop.to_flax_cell(variables["params"]["layer_0"])
  (_, (ys_f, h_f)), grads_f = grad(functools.partial(scanned_loss, nn.GRUCell))(
    {"params": {"GRUCell_0": flax_cell}}, x, h
  )
  helpers.assert_trees_close((ys, h_n, grads[1], grads[2]), (ys_f, h_f, grads_f[1], grads_f[2]), atol=1e-5)
  # Acting: one step at a time, the carry in and out, equals the rollout.
  act = jax.jit(lambda v, x_t, h, done: gru.apply(v, x_t[None], initial_carry=h, resets=done[None], reset_carry=zeros))
  carry = h[None]
  for t in range(steps):
    y_t, carry = act(variables, x[t], carry, dones[t])
    np.testing.assert_allclose(y_t[0], ys[t], atol=1e-6, rtol=0)


@pytest.mark.parametrize(("mode", "candidate"), [("parallel", "linear"), ("log", "g")])
def test_mingru_resets_as_a_step_by_step_loop(mode, candidate):
  rng = np.random.default_rng(1)
  params = {
    "kernel": jnp.asarray(rng.normal(size=(2, 6)), jnp.float32),
    "bias": jnp.asarray(rng.normal(size=6), jnp.float32),
  }
  x, h0, h_reset = (jnp.asarray(rng.normal(size=s), jnp.float32) for s in ((6, 4, 2), (4, 3), (4, 3)))

  def loop(params, x, h0, h_reset):  # by hand: a Python loop over mingru_step with jnp.where resets
    h, ys = h0, []
    for t in range(6):
      h_new = mingru.mingru_step(params, jnp.where(helpers.RESETS[t][:, None], h_reset, h), x[t], candidate)
      valid = (t < helpers.RESET_LENGTHS)[:, None]
      h, y = jnp.where(valid, h_new, h), jnp.where(valid, h_new, 0.0)
      ys.append(y)
    return jnp.stack(ys), h

  def scan(params, x, h0, h_reset):
    return mingru.mingru_scan(
      params,
      x,
      h0,
      mode=mode,
      candidate=candidate,
      seq_lengths=helpers.RESET_LENGTHS,
      resets=helpers.RESETS,
      reset_carry=h_reset,
    )

  loss = lambda f: lambda *a: sum(jnp.sum(jnp.sin(o)) for o in f(*a))  # noqa: E731
  helpers.assert_trees_close(jax.jit(scan)(params, x, h0, h_reset), loop(params, x, h0, h_reset), atol=1e-5)
  grads = jax.jit(jax.grad(loss(scan), argnums=(0, 1, 2, 3)))(params, x, h0, h_reset)
  helpers.assert_trees_close(
    grads, jax.jit(jax.grad(loss(loop), argnums=(0, 1, 2, 3)))(params, x, h0, h_reset), atol=2e-5
  )


def test_bad_resets_are_refused_naming_the_argument():
  _, x, _, _ = helpers.reset_problem()
  gru = jaxgru.GRU(features=4)
  xb = jnp.swapaxes(x, 0, 1)  # [B, T, I]
  variables = gru.init(jax.random.key(0), xb)
  cases = [
    (dict(resets=helpers.RESETS), ValueError, r"resets must have shape \[B, T\]=\(4, 6\), got \(6, 4\)"),
    (dict(resets=helpers.RESETS.T.astype(np.int32)), TypeError, "resets must be a boolean array .* got dtype int32"),
    (
      dict(resets=helpers.RESETS.T, reset_carry=jnp.zeros((4, 4))),
      ValueError,
      r"reset_carry must have shape \[L\*D, B, H\]",
    ),
    (dict(reset_carry=jnp.zeros((1, 4, 4))), ValueError, "reset_carry was given without resets"),
  ]
  for kwargs, error, message in cases:
    with pytest.raises(error, match=message):
      gru.apply(variables, xb, **kwargs)
  with pytest.raises(ValueError, match=r"resets must have shape \[T, B\]=\(6, 4\), got \(4, 6\)"):
    jaxgru.GRU(features=4, time_major=True).apply(variables, x, resets=helpers.RESETS.T)  # time-major: [T, B]
