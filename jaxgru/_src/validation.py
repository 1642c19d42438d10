"""Argument checks shared by every public function and module of jaxgru.

Each check raises before any computation, with a message that names the
argument, says what was wrong and what was expected. Shapes follow the legend
in :mod:`jaxgru.gates`.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def check_bool(name: str, value) -> bool:
  """Returns ``value`` if it is a ``bool``; anything else (``"False"``, ``0``) raises ``TypeError``.

  >>> check_bool("time_major", 1)
  Traceback (most recent call last):
  ...
  TypeError: time_major must be a bool (True or False), got 1 of type int
  """
  if not isinstance(value, (bool, np.bool_)):
    raise TypeError(f"{name} must be a bool (True or False), got {value!r} of type {type(value).__name__}")
  return bool(value)


def check_callable(name: str, value) -> None:
  """Raises ``TypeError`` unless ``value`` is callable (an activation or initializer).

  >>> check_callable("gate_fn", "sigmoid")
  Traceback (most recent call last):
  ...
  TypeError: gate_fn must be a callable such as jax.nn.sigmoid, got 'sigmoid' of type str
  """
  if not callable(value):
    raise TypeError(f"{name} must be a callable such as jax.nn.sigmoid, got {value!r} of type {type(value).__name__}")


def as_numpy(name: str, value) -> np.ndarray:
  """``value`` (a NumPy, JAX, PyTorch or Keras array) as a NumPy array; raises ``TypeError`` naming ``name`` otherwise.

  torch is never imported: a tensor is recognised by its ``detach`` method.
  """
  if hasattr(value, "detach"):  # a torch.Tensor
    value = value.detach().cpu().numpy()
  array = np.asarray(value)
  if array.dtype == object:
    raise TypeError(f"{name} must be an array, got {type(value).__name__}")
  return array


def check_positive_int(name: str, value, *, allow_none: bool = False) -> None:
  """Raises ``ValueError`` unless ``value`` is an integer >= 1 (or ``None`` when allowed)."""
  if allow_none and value is None:
    return
  if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)) or value < 1:
    expected = "a positive integer" + (" or None" if allow_none else "")
    raise ValueError(f"{name} must be {expected}, got {value!r}")


def check_rate(name: str, value) -> None:
  """Raises ``ValueError`` unless ``value`` is a number in ``[0, 1)`` (a dropout rate)."""
  if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) or not 0.0 <= value < 1.0:
    raise ValueError(f"{name} must be in [0, 1), got {value!r}")


def check_floating(name: str, dtype, *, allow_complex: bool = False) -> None:
  """Raises ``TypeError`` unless ``dtype`` is ``None`` or a floating (or, when allowed, complex) dtype."""
  if dtype is None:
    return
  try:
    dtype = jnp.dtype(dtype)
  except TypeError:
    raise TypeError(f"{name} must be a dtype such as float32 or bfloat16, got {dtype!r}") from None
  if jnp.issubdtype(dtype, jnp.floating) or (allow_complex and jnp.issubdtype(dtype, jnp.complexfloating)):
    return
  kinds = "a floating dtype such as float32 or bfloat16" + (", or a complex one" if allow_complex else "")
  raise TypeError(f"{name} must be {kinds}, got {dtype}")


def check_array(name: str, value, *, rank: int | tuple[int, ...], legend: str, floating: bool = True) -> Array:
  """Returns ``value`` as an array after checking its rank and (optionally) that it is floating point.

  Args:
    name: the argument's name, for the error.
    value: an array or something ``jnp.asarray`` takes.
    rank: the expected rank (or ranks).
    legend: the expected shape in the legend of :mod:`jaxgru.gates`, e.g. ``"[T, B, I]"``.
    floating: require a floating (or complex) dtype.

  Raises:
    TypeError: not an array, or not floating point.
    ValueError: the wrong rank.
  """
  if not hasattr(value, "shape"):
    try:
      value = jnp.asarray(value)
    except TypeError:
      raise TypeError(f"{name} must be an array of shape {legend}, got {type(value).__name__}") from None
  ranks = (rank,) if isinstance(rank, int) else rank
  if value.ndim not in ranks:
    raise ValueError(
      f"{name} must have rank {' or '.join(map(str, ranks))}, shape {legend}; got shape {tuple(value.shape)}"
    )
  if floating and not jnp.issubdtype(value.dtype, jnp.inexact):
    raise TypeError(f"{name} must be floating point, got dtype {value.dtype}")
  return value


def check_keyword_only(owner: str, args: tuple, names: tuple[str, ...]) -> None:
  """Raises ``TypeError`` when a layer call got more positional arguments than ``inputs``.

  >>> check_keyword_only("GRU", ([3, 2],), ("seq_lengths", "initial_carry"))
  Traceback (most recent call last):
  ...
  TypeError: GRU takes only the inputs positionally; pass seq_lengths, initial_carry by keyword, e.g. seq_lengths=lengths (got 1 more positional argument)
  """
  if args:
    raise TypeError(
      f"{owner} takes only the inputs positionally; pass {', '.join(names)} by keyword, e.g. "
      f"seq_lengths=lengths (got {len(args)} more positional argument{'s' if len(args) > 1 else ''})"
    )


def check_input_width(owner: str, got: int, expected: int) -> None:
  """Raises ``ValueError`` unless inputs with ``got`` features fit parameters made for ``expected`` (I).

  >>> check_input_width("GRU", 4, 3)
  Traceback (most recent call last):
  ...
  ValueError: GRU got inputs with 4 features, but its parameters expect 3
  """
  if got != expected:
    raise ValueError(f"{owner} got inputs with {got} features, but its parameters expect {expected}")


def check_seq_lengths(seq_lengths, batch: int, num_steps: int) -> Array:
  """Validates ``seq_lengths`` (``[B]`` integers in ``[0, T]``) and returns it as an int32 array.

  The range is checked only when the lengths are concrete; under ``jit``
  lengths are clipped to ``[0, T]`` instead (a length above ``T`` acts as ``T``,
  a negative one as 0).

  >>> check_seq_lengths(jnp.array([1.5, 2.0]), 2, 4)
  Traceback (most recent call last):
  ...
  TypeError: seq_lengths must have an integer dtype, got float32
  """
  if isinstance(seq_lengths, (list, tuple)):
    seq_lengths = np.asarray(seq_lengths)
  if not hasattr(seq_lengths, "shape") or not hasattr(seq_lengths, "dtype"):
    raise TypeError(f"seq_lengths must be an integer array of shape [B]=({batch},), got {type(seq_lengths).__name__}")
  if tuple(seq_lengths.shape) != (batch,):
    raise ValueError(f"seq_lengths must have shape [B]=({batch},), got {tuple(seq_lengths.shape)}")
  if not jnp.issubdtype(seq_lengths.dtype, jnp.integer):
    raise TypeError(f"seq_lengths must have an integer dtype, got {seq_lengths.dtype}")
  if not isinstance(seq_lengths, jax.core.Tracer):
    concrete = np.asarray(seq_lengths)
    if concrete.size and (concrete.min() < 0 or concrete.max() > num_steps):
      raise ValueError(
        f"seq_lengths must lie in [0, T={num_steps}], got values from {concrete.min()} to {concrete.max()}"
      )
  return jnp.clip(jnp.asarray(seq_lengths), 0, num_steps).astype(jnp.int32)


def check_resets(resets, shape: tuple[int, ...], legend: str = "[T, B]") -> Array:
  """Validates episode resets: a boolean array of ``shape`` (``legend`` names it in the caller's layout).

  >>> check_resets(jnp.zeros((3, 2), jnp.int32), (3, 2))
  Traceback (most recent call last):
  ...
  TypeError: resets must be a boolean array of shape [T, B]=(3, 2), True where an episode starts; got dtype int32
  """
  if isinstance(resets, (list, tuple)):
    resets = np.asarray(resets)
  expected = f"{legend}={tuple(shape)}"
  if not hasattr(resets, "shape") or not hasattr(resets, "dtype"):
    raise TypeError(f"resets must be a boolean array of shape {expected}, got {type(resets).__name__}")
  if resets.dtype != np.bool_:
    raise TypeError(
      f"resets must be a boolean array of shape {expected}, True where an episode starts; got dtype {resets.dtype}"
    )
  if tuple(resets.shape) != tuple(shape):
    raise ValueError(f"resets must have shape {expected}, got {tuple(resets.shape)}")
  return jnp.asarray(resets)


def check_gru_params(params: Mapping, *, needs_input: bool = True) -> int:
  """Checks one direction's GRU parameters and returns H.

  Args:
    params: ``recurrent_kernel [H, 3H]``, ``recurrent_bias [3H]`` and, when
      ``needs_input``, ``input_kernel [I, 3H]`` and ``input_bias [3H]``.
    needs_input: whether the input half is used.

  Raises:
    ValueError: a missing or mis-shaped array, naming it.
  """
  if not isinstance(params, Mapping):
    raise TypeError(f"params must be a mapping of GRU parameter arrays, got {type(params).__name__}")
  names = ("recurrent_kernel", "recurrent_bias") + (("input_kernel", "input_bias") if needs_input else ())
  missing = [n for n in names if n not in params]
  if missing:
    raise ValueError(
      f"params is missing {missing}; expected keys input_kernel, recurrent_kernel, input_bias, recurrent_bias"
    )
  w_h = params["recurrent_kernel"]
  if w_h.ndim != 2 or w_h.shape[1] != 3 * w_h.shape[0]:
    raise ValueError(f"params['recurrent_kernel'] must have shape [H, 3H], got {tuple(w_h.shape)}")
  hidden = w_h.shape[0]
  shapes = {"recurrent_bias": (3 * hidden,)}
  if needs_input:
    w_i = params["input_kernel"]
    if w_i.ndim != 2 or w_i.shape[1] != 3 * hidden:
      raise ValueError(f"params['input_kernel'] must have shape [I, 3H] with H={hidden}, got {tuple(w_i.shape)}")
    shapes["input_bias"] = (3 * hidden,)
  for name, shape in shapes.items():
    value = params[name]
    if tuple(jnp.shape(value)) != shape:
      raise ValueError(f"params[{name!r}] must have shape [3H]={shape}, got {tuple(value.shape)}")
  return hidden


def check_recurrence(params: Mapping, x, h0, *, projected: bool) -> tuple[Array, Array]:
  """Checks the arguments of a scan runner; returns ``(x, h0)`` as arrays.

  Args:
    params: one direction's parameters (:func:`check_gru_params`).
    x: ``[T, B, 3H]`` input projections when ``projected``, else ``[T, B, I]`` inputs.
    h0: ``[B, H]`` initial state.
    projected: whether ``x`` is the input projection.

  >>> p = {"recurrent_kernel": jnp.zeros((4, 12)), "recurrent_bias": jnp.zeros(12)}
  >>> check_recurrence(p, jnp.zeros((5, 2, 12)), jnp.zeros((2, 3)), projected=True)
  Traceback (most recent call last):
  ...
  ValueError: h0 must have shape [B, H]=(2, 4), got (2, 3)
  """
  hidden = check_gru_params(params, needs_input=not projected)
  name = "x_proj" if projected else "x"
  x = check_array(name, x, rank=3, legend="[T, B, 3H]" if projected else "[T, B, I]")
  h0 = check_array("h0", h0, rank=2, legend="[B, H]")
  features = 3 * hidden if projected else params["input_kernel"].shape[0]
  if x.shape[-1] != features:
    expected = f"[T, B, 3H] with H={hidden}" if projected else f"[T, B, I] with I={features} (input_kernel)"
    raise ValueError(f"{name} must have shape {expected}, got {tuple(x.shape)}")
  if tuple(h0.shape) != (x.shape[1], hidden):
    raise ValueError(f"h0 must have shape [B, H]={(x.shape[1], hidden)}, got {tuple(h0.shape)}")
  return x, h0
