"""The rows of the benchmark: a registry of peers, each one small factory function.

A *peer* is a named way to compute a model (``jaxgru.scan``, ``flax``,
``torch``, ...). Its factory receives a :class:`~benchmarking.problem.Problem`
and a :class:`Mode` and returns a :class:`Runner`: a zero-argument callable
that does the work once and waits for the device, plus a function that turns its
result into NumPy arrays in jaxgru's layout so the equality check can compare
every peer with the model's reference. Adding a row is one decorated function (in a module listed in
:data:`BUILTIN_PEER_MODULES`, or any module imported before the run); rows of
another model name it with ``model=`` and register that model's float32
reference with :func:`register_reference`:

>>> @register_peer("example.doc", requires=("numpy",))
... def _example(problem, mode):
...   ...
>>> "example.doc" in peer_names()
True
>>> unregister_peer("example.doc")
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import importlib.util
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

import numpy as np


class Mode(str, enum.Enum):
  """What one timed call computes."""

  FORWARD = "forward"  # outputs [B, T, H] of the last layer
  # outputs, and the gradients of sum(outputs * cotangent) w.r.t. inputs and all weights
  FORWARD_BACKWARD = "forward_backward"
  # one optimizer step of the FloydHub post's model: the GRU stack, dropout between layers,
  # ReLU and Linear on the last step, MSE loss, backward, Adam (benchmarking.train_step)
  TRAIN_STEP = "train_step"
  # a recurrent policy's update (purejaxrl's PPO-RNN): the loss of a value head over a rollout
  # with episode resets, and its gradients w.r.t. the GRU and the head (benchmarking.recurrent_policy)
  POLICY_UPDATE = "policy_update"
  # a recurrent policy acting: one step of every environment, carry in and out, resets applied
  POLICY_STEP = "policy_step"

  def tokens(self, shape) -> int:
    """Tokens one call of this mode processes for a problem of ``shape`` ``(B, T, I, H)``.

    >>> Mode.FORWARD.tokens((8, 64, 16, 32)), Mode.POLICY_STEP.tokens((8, 64, 16, 32))
    (512, 8)
    """
    batch, steps = shape[0], shape[1]
    return batch if self is Mode.POLICY_STEP else batch * steps


GRU_MODES = (Mode.FORWARD, Mode.FORWARD_BACKWARD, Mode.TRAIN_STEP)  # what a row computes unless it says
POLICY_MODES = (Mode.POLICY_UPDATE, Mode.POLICY_STEP)
DEFAULT_BASELINES = ("flax", "torch")  # rows every other row is compared with, unless the mode registers its own


@dataclasses.dataclass(frozen=True)
class Runner:
  """One peer set up for one problem and mode.

  Attributes:
    call: does the work once and returns only when the device is done
      (``block_until_ready`` / ``torch.cuda.synchronize``).
    to_numpy: the result of ``call`` as a flat ``{name: array}`` dict in
      jaxgru's layout: ``"outputs" [B, T, H]`` and, in forward+backward mode,
      ``"inputs" [B, T, I]`` (the input gradient) and
      ``"layer_{l}/{param}"`` weight gradients (see :mod:`jaxgru.gates`).
    memory_bytes: device memory this peer needs, where the backend reports
      it; called once after the first call. ``None``: not reported.
    framework: ``"jax"`` or ``"torch"``; the first call of a JAX peer is its
      compile time.
    check: computes the result the equality check compares, where it is not
      ``call``'s (a training step checks with dropout off, from the initial
      weights, and is timed with dropout on); ``None``: ``call``'s first result.
    hlo: the optimized HLO text of the program ``call`` runs (JAX rows), which
      the roofline reads its matrix products from
      (:mod:`benchmarking.roofline`); ``None``: not a single XLA program.
  """

  call: Callable[[], Any]
  to_numpy: Callable[[Any], Mapping[str, np.ndarray]]
  memory_bytes: Callable[[], int | None] | None = None
  framework: str = "jax"
  check: Callable[[], Any] | None = None
  hlo: Callable[[], str] | None = None


Factory = Callable[[Any, Mode], Runner]  # (Problem, Mode) -> Runner


@dataclasses.dataclass(frozen=True)
class Peer:
  """A registered row: its name, the model it computes and what it needs installed."""

  name: str
  factory: Factory
  model: str  # rows are checked against the reference registered for this model
  requires: tuple[str, ...]  # importable modules; the row is skipped when one is missing
  modes: tuple[Mode, ...] = GRU_MODES  # the modes it has a model for; skipped in the others

  def missing(self) -> tuple[str, ...]:
    """The required modules that cannot be imported here."""
    return tuple(m for m in self.requires if importlib.util.find_spec(m) is None)


_PEERS: dict[str, Peer] = {}
_REFERENCES: dict[str, Callable[[Any, Mode], Mapping[str, np.ndarray]]] = {}
_BASELINES: dict[Mode, tuple[str, ...]] = {}


def register_peer(
  name: str, *, model: str = "gru", requires: tuple[str, ...] = (), modes: tuple[Mode, ...] = GRU_MODES
) -> Callable[[Factory], Factory]:
  """Decorator registering ``factory(problem, mode) -> Runner`` as the row ``name``.

  Raises:
    ValueError: ``name`` is empty or already registered, or ``modes`` is empty.
  """
  if not isinstance(name, str) or not name:
    raise ValueError(f"a peer name must be a non-empty string, got {name!r}")
  if name in _PEERS:
    raise ValueError(f"peer {name!r} is already registered")
  modes = tuple(Mode(m) for m in modes)
  if not modes:
    raise ValueError(f"peer {name!r} needs at least one mode")

  def decorate(factory: Factory) -> Factory:
    _PEERS[name] = Peer(name, factory, model, tuple(requires), modes)
    return factory

  return decorate


def unregister_peer(name: str) -> None:
  """Removes a row (tests use it to add and drop throwaway peers)."""
  if name not in _PEERS:
    raise ValueError(f"peer {name!r} is not registered; registered: {list(_PEERS)}")
  del _PEERS[name]


def register_reference(model: str) -> Callable:
  """Decorator registering ``reference(problem, mode) -> {name: array}`` for ``model``.

  The reference is computed in float32 (at the highest matmul precision) and
  every row of ``model`` must match it within the config's tolerance.
  """

  def decorate(reference):
    _REFERENCES[model] = reference
    return reference

  return decorate


def register_baselines(mode: Mode, names: tuple[str, ...]) -> None:
  """Makes ``names`` the rows every other row of a ``mode`` case is compared with (its ratio columns).

  Modes that register none use :data:`DEFAULT_BASELINES`.
  """
  _BASELINES[Mode(mode)] = tuple(names)


def baselines(mode: Mode) -> tuple[str, ...]:
  """The rows the other rows of a ``mode`` case are compared with (:func:`register_baselines`)."""
  _load_builtin_peers()
  return _BASELINES.get(Mode(mode), DEFAULT_BASELINES)


def peer_names() -> tuple[str, ...]:
  """Names of all registered rows, in registration order."""
  _load_builtin_peers()
  return tuple(_PEERS)


def get_peer(name: str) -> Peer:
  """The registered row ``name``.

  Raises:
    ValueError: no such row.
  """
  _load_builtin_peers()
  if name not in _PEERS:
    raise ValueError(f"unknown benchmark peer {name!r}; registered: {list(_PEERS)}")
  return _PEERS[name]


def get_reference(model: str) -> Callable[[Any, Mode], Mapping[str, np.ndarray]]:
  """The reference function of ``model``.

  Raises:
    ValueError: no reference registered for ``model``.
  """
  _load_builtin_peers()
  if model not in _REFERENCES:
    raise ValueError(f"no reference registered for model {model!r}; registered: {list(_REFERENCES)}")
  return _REFERENCES[model]


# Modules whose import registers rows and references; a module of new rows
# (another model, say) is added here. Imported lazily: they import this module.
BUILTIN_PEER_MODULES = ("benchmarking.peers", "benchmarking.mingru_peers", "benchmarking.recurrent_policy")


def _load_builtin_peers() -> None:
  for module in BUILTIN_PEER_MODULES:
    importlib.import_module(module)
