r"""The training-step mode: one optimizer step of the FloydHub post's model, per framework.

The model of the post ("GRU and LSTM in PyTorch", FloydHub): a stacked GRU
(``problem.num_layers`` layers, dropout between them), ReLU and a Linear
``[H, 1]`` head on the last step's output, MSE loss against ``[B, 1]`` targets,
and Adam. One timed call is one full step: forward, loss, backward and the
Adam update of every parameter (JAX: one jitted function with donated state).

.. math::

   \hat y = \max(h_T^{(L)}, 0) W_o + b_o, \qquad
   \mathcal{L} = \tfrac{1}{B} \textstyle\sum_b (\hat y_b - y_b)^2

The equality check runs the step once from the initial weights with dropout
off (dropout masks are drawn differently by each framework) and compares the
loss and the updated parameters with the reference; the timed calls run with
dropout on and keep training the same state.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarking.problem import Problem
from benchmarking.registry import Runner

# The post's settings (its hyper-parameters), fixed so every row trains the same model.
DROPOUT = 0.2  # between GRU layers (torch.nn.GRU(dropout=...))
LEARNING_RATE = 1e-3  # Adam, PyTorch's and optax's default betas and eps


class Head(NamedTuple):
  """The Linear layer on the last step and the regression targets, drawn from the problem's seed."""

  kernel: np.ndarray  # [H, 1] float32
  bias: np.ndarray  # [1] float32
  targets: np.ndarray  # [B, 1] float32


def make_head(problem: Problem) -> Head:
  """The head's weights ``U(-1/sqrt(H), 1/sqrt(H))`` (as ``torch.nn.Linear``) and normal targets.

  >>> from benchmarking.problem import make_problem
  >>> head = make_head(make_problem((2, 3, 4, 5), "float32"))
  >>> head.kernel.shape, head.bias.shape, head.targets.shape
  ((5, 1), (1,), (2, 1))
  """
  batch, _, _, hidden = problem.shape
  rng = np.random.default_rng(problem.seed + 2)
  bound = 1.0 / np.sqrt(hidden)
  kernel = rng.uniform(-bound, bound, (hidden, 1)).astype(np.float32)
  bias = rng.uniform(-bound, bound, (1,)).astype(np.float32)
  return Head(kernel, bias, rng.standard_normal((batch, 1)).astype(np.float32))


def dropout(rng: jax.Array, rate: float, y: jax.Array) -> jax.Array:
  """Inverted dropout, as ``flax.linen.Dropout`` computes it (``rate`` 0: ``y`` unchanged)."""
  if rate == 0.0:
    return y
  keep = jax.random.bernoulli(rng, 1.0 - rate, y.shape)
  return jnp.where(keep, y / (1.0 - rate), jnp.zeros_like(y))


# stack(gru_params, x [B, T, I], rng, rate) -> outputs [B, T, H] of the last layer, with
# dropout of the given rate on the outputs of every layer but the last.
Stack = Callable[[object, jax.Array, jax.Array, float], jax.Array]


class TrainState(NamedTuple):
  """What one JAX training step reads and replaces (donated)."""

  params: dict  # {"gru": the stack's parameter pytree, "head": {"kernel": [H, 1], "bias": [1]}}
  opt_state: optax.OptState  # Adam's moments and count
  step: jax.Array  # shape=(), dtype=int32; folded into the dropout key


def jax_train_runner(
  stack: Stack, gru_params, problem: Problem, *, params_to_layout: Callable[[object], Mapping[str, np.ndarray]]
) -> Runner:
  """A :class:`Runner` doing one Adam step of the post's model around a JAX GRU stack.

  Args:
    stack: the GRU stack with dropout between layers (see :data:`Stack`).
    gru_params: its parameter pytree.
    problem: inputs (``[B, T, I]``), shapes and seed of the head and targets.
    params_to_layout: the stack's parameters as a flat ``{"layer_{l}/{param}": array}``
      dict in jaxgru's layout; names it cannot give (Flax's folded biases) are
      left out and not checked.
  """
  head = make_head(problem)
  x = jnp.asarray(problem.inputs, problem.dtype)
  targets = jnp.asarray(head.targets)
  optimizer = optax.adam(LEARNING_RATE)
  key = jax.random.key(problem.seed)

  def loss_fn(params, rng, rate):
    y = stack(params["gru"], x, rng, rate)[:, -1].astype(jnp.float32)  # [B, H], the last step
    pred = jnp.matmul(jax.nn.relu(y), params["head"]["kernel"]) + params["head"]["bias"][None, :]  # [B, 1]
    return jnp.mean((pred - targets) ** 2)

  def train_step(state: TrainState, rate: float):
    rng = jax.random.fold_in(key, state.step)
    loss, grads = jax.value_and_grad(loss_fn)(state.params, rng, rate)
    with jax.numpy_dtype_promotion("standard"):  # optax raises b1 ** count (float, int32)
      updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    return TrainState(optax.apply_updates(state.params, updates), opt_state, state.step + 1), loss

  def initial_state() -> TrainState:
    params = {
      "gru": jax.tree.map(jnp.array, gru_params),
      "head": {"kernel": jnp.asarray(head.kernel), "bias": jnp.asarray(head.bias)},
    }
    return TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32))

  timed = jax.jit(lambda state: train_step(state, DROPOUT), donate_argnums=0)
  checked = jax.jit(lambda state: train_step(state, 0.0))
  holder = [initial_state()]

  def call():
    holder[0], loss = timed(holder[0])
    return jax.block_until_ready((holder[0], loss))

  def to_numpy(result):
    state, loss = result
    out = {"loss": np.asarray(loss, np.float32).reshape(1)}
    out.update({k: np.asarray(v, np.float32) for k, v in params_to_layout(state.params["gru"]).items()})
    out["head/kernel"] = np.asarray(state.params["head"]["kernel"])
    out["head/bias"] = np.asarray(state.params["head"]["bias"])
    return out

  return Runner(
    call=call,
    to_numpy=to_numpy,
    framework="jax",
    check=lambda: jax.block_until_ready(checked(initial_state())),
    hlo=lambda: timed.lower(holder[0]).compile().as_text(),
  )


def torch_train_runner(
  problem: Problem, state_dict: Mapping[str, np.ndarray], to_layout: Callable[[list, list], dict], *, device="cpu"
) -> Runner:
  """The post's model in PyTorch: ``nn.GRU(dropout=...)``, ReLU, ``nn.Linear``, MSE, ``torch.optim.Adam``.

  Args:
    problem: as :func:`jax_train_runner`.
    state_dict: ``torch.nn.GRU``'s weights (:func:`jaxgru.interop.to_torch`).
    to_layout: ``(names, arrays)`` of ``torch.nn.GRU`` parameters -> jaxgru's flat layout.
    device: a ``torch.device`` or its name; on ``"cuda"`` the GRU runs on cuDNN and
      every call waits for the device.
  """
  import torch  # noqa: PLC0415  (optional)

  device = torch.device(device)
  _, _, features, hidden = problem.shape
  head = make_head(problem)
  x = torch.from_numpy(np.array(problem.inputs)).to(device)
  targets = torch.from_numpy(np.array(head.targets)).to(device)

  def build(rate):
    gru = torch.nn.GRU(
      features, hidden, num_layers=problem.num_layers, batch_first=True, dropout=rate if problem.num_layers > 1 else 0.0
    )
    gru.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state_dict.items()})
    linear = torch.nn.Linear(hidden, 1)
    with torch.no_grad():
      linear.weight.copy_(torch.from_numpy(head.kernel.T.copy()))
      linear.bias.copy_(torch.from_numpy(head.bias))
    gru.to(device)
    linear.to(device)
    optimizer = torch.optim.Adam([*gru.parameters(), *linear.parameters()], lr=LEARNING_RATE)

    def step():
      optimizer.zero_grad(set_to_none=True)
      out, _ = gru(x)
      loss = torch.nn.functional.mse_loss(linear(torch.relu(out[:, -1])), targets)
      loss.backward()
      optimizer.step()
      if device.type == "cuda":
        torch.cuda.synchronize(device)
      return gru, linear, loss.detach()

    return step

  def to_numpy(result):
    gru, linear, loss = result
    names, arrays = zip(*((n, p.detach().cpu().numpy()) for n, p in gru.named_parameters()))
    out = {"loss": loss.cpu().numpy().astype(np.float32).reshape(1), **to_layout(list(names), list(arrays))}
    out["head/kernel"] = linear.weight.detach().cpu().numpy().T.copy()
    out["head/bias"] = linear.bias.detach().cpu().numpy().copy()
    return out

  return Runner(call=build(DROPOUT), to_numpy=to_numpy, framework="torch", check=lambda: build(0.0)())
