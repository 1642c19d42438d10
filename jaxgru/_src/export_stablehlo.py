"""A JAX function out of Python as serialized StableHLO (:mod:`jax.export`), with symbolic dimensions.

:func:`to_stablehlo` serializes a jitted JAX function (a model's parameters
closed over) for another JAX program; :func:`load_stablehlo` reads it back.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from jaxgru._src.output_files import check_output_path
from jaxgru._src.output_files import write_file


def to_stablehlo(
  fn: Callable,
  *args: Any,
  symbolic: Sequence[str | None] | None = None,
  path: str | os.PathLike | None = None,
  force: bool = False,
  platforms: Sequence[str] | None = None,
) -> jax.export.Exported:
  """Exports a JAX function as serialized StableHLO (:mod:`jax.export`), with symbolic dimensions.

  The function's constants (a model's parameters closed over) go into the
  module; another JAX program runs it with :func:`load_stablehlo` and
  ``exported.call(*args)``, without this Python code.

  Args:
    fn: the function (it is jitted; a ``jax.jit`` function is taken as is).
    *args: example arguments: arrays or ``jax.ShapeDtypeStruct`` s.
    symbolic: one shape per argument in :func:`jax.export.symbolic_shape`
      syntax, such as ``"b, t, 3"``, or ``None`` for the argument's own shape;
      names shared between arguments are the same dimension.
    path: where to write the serialized module; ``None`` writes nothing
      (folder must exist; atomic, as :func:`to_onnx`).
    force: overwrite an existing ``path``.
    platforms: the platforms to export for (``("cpu", "cuda")``); default the current backend.

  Returns:
    The ``jax.export.Exported``; ``exported.serialize()`` is what ``path`` holds.

  Raises:
    ValueError: ``symbolic`` does not have one entry per argument, or a shape
      whose rank or fixed sizes differ from the argument's.
    FileNotFoundError, FileExistsError, IsADirectoryError: a bad ``path`` (its folder is
      missing, it is a folder, or it exists without ``force``), before anything is traced.

  Example:

  >>> import jax.numpy as jnp
  >>> exported = to_stablehlo(lambda x: jnp.cumsum(x, axis=1), jnp.ones((2, 5)), symbolic=["b, t"])
  >>> exported.in_avals
  (ShapedArray(float32[b,t]),)
  >>> exported.call(jnp.ones((3, 4)))[2]
  Array([1., 2., 3., 4.], dtype=float32)
  """
  if path is not None:
    check_output_path(path, force=force)
  args = [a if hasattr(a, "shape") and hasattr(a, "dtype") else np.asarray(a) for a in args]
  specs = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in args]
  if symbolic is not None:
    if isinstance(symbolic, str) or len(symbolic) != len(args):
      raise ValueError(
        f"to_stablehlo symbolic must hold one shape (or None) per argument, {len(args)}, got {symbolic!r}"
      )
    scope = jax.export.SymbolicScope()
    for i, (shape, spec) in enumerate(zip(symbolic, specs)):
      if shape is None:
        continue
      dims = jax.export.symbolic_shape(shape, scope=scope)
      fixed_ok = all(not isinstance(d, int) or d == s for d, s in zip(dims, spec.shape))
      if len(dims) != len(spec.shape) or not fixed_ok:
        raise ValueError(f"to_stablehlo symbolic[{i}] = {shape!r} does not fit argument {i} of shape {spec.shape}")
      specs[i] = jax.ShapeDtypeStruct(dims, spec.dtype)
  exported = jax.export.export(jax.jit(fn), platforms=platforms)(*specs)
  if path is not None:
    write_file(path, bytes(exported.serialize()), force=force)
  return exported


def load_stablehlo(path: str | os.PathLike) -> jax.export.Exported:
  """Reads a module written by :func:`to_stablehlo`; run it with ``exported.call(*args)``.

  Raises:
    FileNotFoundError: no file at ``path``.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"no StableHLO module at {os.fspath(path)!r}; write one with jaxgru.export.to_stablehlo")
  with open(path, "rb") as f:
    return jax.export.deserialize(bytearray(f.read()))
