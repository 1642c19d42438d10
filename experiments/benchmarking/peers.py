"""The built-in rows: ``jaxgru.GRU`` per implementation, Flax, PyTorch and Equinox.

Every row computes the same stacked GRU (``reset_after``, PyTorch's equations;
see :mod:`jaxgru.gates`) on the same weights, converted to each library's
layout. JAX rows keep float32 parameters and compute in the problem's dtype
(mixed precision, as ``jaxgru.GRU(dtype=...)`` and ``flax.linen.GRUCell(dtype=...)``
do); PyTorch and Equinox compute in their parameters' dtype, so their
parameters are cast to it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from benchmarking import train_step
from benchmarking.problem import Problem
from benchmarking.problem import flat_params
from benchmarking.problem import param_name
from benchmarking.registry import Mode
from benchmarking.registry import Runner
from benchmarking.registry import register_peer
from benchmarking.registry import register_reference
from jaxgru import GRU
from jaxgru import Implementation
from jaxgru import interop


def _as_f32(a) -> np.ndarray:
  return np.asarray(jnp.asarray(a, jnp.float32))


def jax_memory_bytes(jitted, args) -> int | None:
  """XLA's buffers for one call of ``jitted(*args)``; ``None`` where the backend reports no device memory."""
  # Only where the backend reports device memory (GPUs); the CPU client does not.
  if jax.devices()[0].memory_stats() is None:
    return None
  stats = jitted.lower(*args).compile().memory_analysis()  # cached: the first call compiled it
  return int(
    stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes - stats.alias_size_in_bytes
  )


def jax_runner(
  apply: Callable,
  params,
  problem: Problem,
  mode: Mode,
  *,
  grads_to_layout: Callable[[object], Mapping[str, np.ndarray]],
) -> Runner:
  """A :class:`Runner` for a JAX model ``apply(params, x [B, T, I]) -> outputs [B, T, H]``.

  Forward jits ``apply``; forward+backward jits ``jax.vjp`` of it, pulled back
  with the problem's cotangent, so one call returns outputs and all gradients.

  Args:
    apply: the pure model function.
    params: its parameter pytree (device arrays).
    problem: inputs and cotangent (cast to the problem's dtype here).
    mode: what one call computes.
    grads_to_layout: parameter gradients (a pytree like ``params``) as a flat
      ``{"layer_{l}/{param}": array}`` dict in jaxgru's layout.
  """
  if mode is Mode.TRAIN_STEP:
    raise ValueError("this row has no training-step model (mode train_step)")
  x = jnp.asarray(problem.inputs, problem.dtype)
  if mode is Mode.FORWARD:
    jitted = jax.jit(apply)
    args = (params, x)

    def to_numpy(y):
      return {"outputs": _as_f32(y)}

  else:

    def forward_backward(params, x, cotangent):
      y, pullback = jax.vjp(apply, params, x)
      dparams, dx = pullback(cotangent.astype(y.dtype))
      return y, dx, dparams

    jitted = jax.jit(forward_backward)
    args = (params, x, jnp.asarray(problem.cotangent, problem.dtype))

    def to_numpy(result):
      y, dx, dparams = result
      return {
        "outputs": _as_f32(y),
        "inputs": _as_f32(dx),
        **{k: _as_f32(v) for k, v in grads_to_layout(dparams).items()},
      }

  return Runner(
    call=lambda: jax.block_until_ready(jitted(*args)),
    to_numpy=to_numpy,
    memory_bytes=lambda: jax_memory_bytes(jitted, args),
    framework="jax",
    hlo=lambda: jitted.lower(*args).compile().as_text(),
  )


def _jaxgru_apply(problem: Problem, implementation: Implementation, dtype) -> Callable:
  layer = GRU(
    features=problem.shape[3],
    num_layers=problem.num_layers,
    bidirectional=problem.bidirectional,
    implementation=implementation,
    dtype=jnp.dtype(dtype),
    param_dtype=jnp.float32,
  )
  return lambda params, x: layer.apply({"params": params}, x)[0]


def _jaxgru_stack(problem: Problem, implementation: Implementation, dtype) -> train_step.Stack:
  def stack(params, x, rng, rate):
    layer = GRU(
      features=problem.shape[3],
      num_layers=problem.num_layers,
      bidirectional=problem.bidirectional,
      implementation=implementation,
      dropout=rate,
      dtype=jnp.dtype(dtype),
      param_dtype=jnp.float32,
    )
    return layer.apply({"params": params}, x, deterministic=rate == 0.0, rngs={"dropout": rng})[0]

  return stack


def _jaxgru_peer(implementation: Implementation):
  def factory(problem: Problem, mode: Mode) -> Runner:
    params = jax.tree.map(jnp.asarray, problem.params)
    if mode is Mode.TRAIN_STEP:
      return train_step.jax_train_runner(
        _jaxgru_stack(problem, implementation, problem.dtype), params, problem, params_to_layout=flat_params
      )
    apply = _jaxgru_apply(problem, implementation, problem.dtype)
    return jax_runner(apply, params, problem, mode, grads_to_layout=flat_params)

  return factory


# One row per member of the enum, so implementations added to it appear here
# without edits. "auto" is timed too: it is what users get by default.
for _implementation in Implementation:
  register_peer(f"jaxgru.{_implementation.value}")(_jaxgru_peer(_implementation))


@register_reference("gru")
def gru_reference(problem: Problem, mode: Mode) -> dict[str, np.ndarray]:
  """The GRU every row must match: ``jaxgru.GRU`` with ``lax.scan``, float32, highest precision.

  Returns:
    The flat result dict of :class:`~benchmarking.registry.Runner`'s ``to_numpy``.
  """
  reference = problem._replace(dtype="float32")
  # Default float32 matmuls may use TF32 on GPUs; the reference must not.
  with jax.default_matmul_precision("highest"):
    runner = _jaxgru_peer(Implementation.SCAN)(reference, mode)
    return dict(runner.to_numpy(runner.check() if runner.check else runner.call()))


_FLAX_INPUT_GATES = ("ir", "iz", "in")
_FLAX_HIDDEN_GATES = ("hr", "hz", "hn")


def flax_grads_to_layout(grads: list) -> dict[str, np.ndarray]:
  """Gradients of ``flax.linen.GRUCell`` parameters, ``grads[layer][direction]``, in jaxgru's layout.

  Flax folds ``b_hr, b_hz`` into ``b_ir, b_iz`` (:func:`jaxgru.interop.to_flax_cell`);
  both halves of a folded sum get the sum's gradient.
  """
  out = {}
  for layer, directions in enumerate(grads):
    for direction, g in enumerate(directions):
      name = param_name(layer, direction)
      out[f"{name}/input_kernel"] = jnp.concatenate([g[k]["kernel"] for k in _FLAX_INPUT_GATES], -1)
      out[f"{name}/recurrent_kernel"] = jnp.concatenate([g[k]["kernel"] for k in _FLAX_HIDDEN_GATES], -1)
      out[f"{name}/input_bias"] = jnp.concatenate([g[k]["bias"] for k in _FLAX_INPUT_GATES])
      out[f"{name}/recurrent_bias"] = jnp.concatenate([g["ir"]["bias"], g["iz"]["bias"], g["hn"]["bias"]])
  return out


@register_peer("flax")
def flax_peer(problem: Problem, mode: Mode) -> Runner:
  """``flax.linen.RNN(flax.linen.GRUCell)`` per layer and direction (the reverse one with ``reverse=True, keep_order=True``)."""
  cell = nn.GRUCell(features=problem.shape[3], dtype=jnp.dtype(problem.dtype), param_dtype=jnp.float32)
  rnns = [nn.RNN(cell), nn.RNN(cell, reverse=True, keep_order=True)][: problem.directions]
  params = [
    [interop.to_flax_cell(problem.params[param_name(l, d)]) for d in range(problem.directions)]
    for l in range(problem.num_layers)
  ]

  def stack(params, x, rng, rate):
    for layer, directions in enumerate(params):
      if layer and rate:
        x = train_step.dropout(jax.random.fold_in(rng, layer), rate, x)
      ys = [rnn.apply({"params": {"cell": cell_params}}, x) for rnn, cell_params in zip(rnns, directions)]
      x = ys[0] if len(ys) == 1 else jnp.concatenate(ys, -1)  # [B, T, D*H]
    return x

  if mode is Mode.TRAIN_STEP:
    # Flax has one bias where PyTorch has b_ir + b_hr (and b_iz + b_hz): Adam updates the sum once,
    # so those two updated biases are not PyTorch's and are left out of the check.
    def params_to_layout(params):
      flat = flax_grads_to_layout(params)
      return {k: v for k, v in flat.items() if not k.endswith(("/input_bias", "/recurrent_bias"))}

    return train_step.jax_train_runner(stack, params, problem, params_to_layout=params_to_layout)
  return jax_runner(
    lambda params, x: stack(params, x, None, 0.0), params, problem, mode, grads_to_layout=flax_grads_to_layout
  )


@register_peer("equinox", requires=("equinox",))
def equinox_peer(problem: Problem, mode: Mode) -> Runner:
  """``equinox.nn.GRUCell`` per layer, ``vmap``-ed over the batch under ``lax.scan``."""
  import equinox as eqx

  if problem.bidirectional:
    raise ValueError("the equinox row has no bidirectional GRU")
  hidden = problem.shape[3]
  cells = []
  for layer in range(problem.num_layers):
    p = {k: jnp.asarray(v, problem.dtype) for k, v in problem.params[param_name(layer, 0)].items()}
    b_h = p["recurrent_bias"]
    cell = eqx.nn.GRUCell(p["input_kernel"].shape[0], hidden, dtype=jnp.dtype(problem.dtype), key=jax.random.key(0))
    # Equinox keeps one [3H] bias outside the reset gate and b_hn apart (bias_n).
    bias = p["input_bias"] + jnp.concatenate([b_h[: 2 * hidden], jnp.zeros_like(b_h[2 * hidden :])])
    cells.append(
      eqx.tree_at(
        lambda c: (c.weight_ih, c.weight_hh, c.bias, c.bias_n),
        cell,
        (p["input_kernel"].T, p["recurrent_kernel"].T, bias, b_h[2 * hidden :]),
      )
    )

  def apply(cells, x):
    x = jnp.swapaxes(x, 0, 1)  # [T, B, I]
    for cell in cells:
      step = jax.vmap(cell)  # over B

      def body(h, x_t, step=step):
        h = step(x_t, h)
        return h, h

      h0 = jnp.zeros((x.shape[1], hidden), x.dtype)
      _, x = jax.lax.scan(body, h0, x)  # [T, B, H]
    return jnp.swapaxes(x, 0, 1)

  def grads_to_layout(grads):
    out = {}
    for layer, g in enumerate(grads):
      name = param_name(layer, 0)
      out[f"{name}/input_kernel"] = g.weight_ih.T
      out[f"{name}/recurrent_kernel"] = g.weight_hh.T
      out[f"{name}/input_bias"] = g.bias
      out[f"{name}/recurrent_bias"] = jnp.concatenate([g.bias[: 2 * hidden], g.bias_n])
    return out

  return jax_runner(apply, cells, problem, mode, grads_to_layout=grads_to_layout)


def torch_to_layout(names: list, arrays: list) -> dict[str, np.ndarray]:
  """``torch.nn.GRU`` parameters (or their gradients) by name, in jaxgru's flat layout.

  >>> sorted(torch_to_layout(["weight_ih_l1_reverse", "bias_hh_l0"], [np.zeros((6, 4)), np.zeros(6)]))
  ['layer_0/recurrent_bias', 'layer_1_reverse/input_kernel']
  """
  kinds = {
    "weight_ih": "input_kernel",
    "weight_hh": "recurrent_kernel",
    "bias_ih": "input_bias",
    "bias_hh": "recurrent_bias",
  }
  out = {}
  for name, value in zip(names, arrays):
    match = _TORCH_NAME.fullmatch(name)
    if match is None:
      raise ValueError(f"not a torch.nn.GRU parameter name: {name!r}")
    kind, layer, reverse = match.groups()
    out[f"{param_name(int(layer), int(bool(reverse)))}/{kinds[kind]}"] = value.T if kind.startswith("weight") else value
  return out


_TORCH_NAME = re.compile(r"(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?")


_TORCH_DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


@register_peer("torch", requires=("torch",))
def torch_peer(problem: Problem, mode: Mode) -> Runner:
  """``torch.nn.GRU`` (cuDNN when CUDA is available, else oneDNN on the CPU)."""
  import torch

  batch, _, features, hidden = problem.shape
  device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
  dtype = getattr(torch, _TORCH_DTYPES[problem.dtype])
  layer = GRU(features=hidden, num_layers=problem.num_layers, bidirectional=problem.bidirectional)
  state = interop.to_torch(layer, {"params": problem.params})
  if mode is Mode.TRAIN_STEP:
    if problem.dtype != "float32" or problem.bidirectional:
      raise ValueError("the torch training step is the post's model: float32, one direction")
    return train_step.torch_train_runner(problem, state, torch_to_layout, device=device)
  module = torch.nn.GRU(
    features, hidden, num_layers=problem.num_layers, bidirectional=problem.bidirectional, batch_first=True
  )
  module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
  module = module.to(device=device, dtype=dtype)
  x = torch.from_numpy(np.array(problem.inputs)).to(device=device, dtype=dtype)
  cotangent = torch.from_numpy(np.array(problem.cotangent)).to(device=device, dtype=dtype)
  weights = list(module.parameters())
  names = [n for n, _ in module.named_parameters()]

  def sync():
    if device.type == "cuda":
      torch.cuda.synchronize()

  if mode is Mode.FORWARD:

    def call():
      with torch.inference_mode():
        y, _ = module(x)
      sync()
      return (y,)

  else:
    x.requires_grad_(True)

    def call():
      y, _ = module(x)
      grads = torch.autograd.grad(y, [x, *weights], grad_outputs=cotangent)
      sync()
      return (y.detach(), *grads)

  def to_numpy(result):
    as_np = [r.detach().float().cpu().numpy() for r in result]
    out = {"outputs": as_np[0]}
    if len(as_np) > 1:
      out["inputs"] = as_np[1]
      out.update(torch_to_layout(names, as_np[2:]))
    return out

  def memory_bytes():
    return int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None

  if device.type == "cuda":
    torch.cuda.reset_peak_memory_stats(device)
  return Runner(call=call, to_numpy=to_numpy, memory_bytes=memory_bytes, framework="torch")
