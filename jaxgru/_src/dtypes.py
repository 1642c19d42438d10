"""The dtype rule of every jaxgru function, cell and layer, written once.

* :func:`compute_dtype`: the dtype of the products and the gate maths. An
  explicit ``dtype`` wins; ``None`` promotes everything that enters the
  computation (inputs, carry, parameters), as ``flax.linen.dtypes.promote_dtype``
  does, so every implementation of one request computes in the same dtype.
* :func:`accumulation_dtype`: the dtype sums over time and batch run in (the
  hand-written backward's gradients): never below float32, never below the
  carry (recurrentgemma's ``get_acc_dtype``).
* :func:`interpolation_dtype`: the dtype of :math:`h' = n + z (h - n)`, so a
  float32 carry is never rounded to bfloat16 between steps.
* :func:`promote_inputs`: integer and boolean inputs become the parameter
  dtype, as Flax's cells make them.
* :func:`init_dtype`: half-precision parameters are drawn in float32, then rounded.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

__all__ = (
  "accumulation_dtype",
  "at_least_float32",
  "compute_dtype",
  "init_dtype",
  "interpolation_dtype",
  "promote_inputs",
)


def compute_dtype(dtype, *operands) -> jnp.dtype:
  """``dtype`` if given, else the promoted dtype of ``operands`` (arrays or dtypes).

  The promotion is a decision about dtypes only; every operand is then cast
  explicitly, so this holds under ``jax_numpy_dtype_promotion="strict"`` too.
  Complex operands promote by NumPy's rule, as Flax's cells compute.

  >>> compute_dtype(None, jnp.zeros(2, jnp.bfloat16), jnp.zeros(2)), compute_dtype(jnp.bfloat16, jnp.zeros(2))
  (dtype('float32'), dtype(bfloat16))
  """
  if dtype is not None:
    return jnp.dtype(dtype)
  kinds = [jnp.dtype(getattr(o, "dtype", o)) for o in operands if o is not None]
  if any(jnp.issubdtype(k, jnp.complexfloating) for k in kinds):
    return functools.reduce(np.promote_types, kinds)
  with jax.numpy_dtype_promotion("standard"):
    return jnp.dtype(jnp.result_type(*kinds))


def at_least_float32(dtype) -> jnp.dtype:
  """``dtype`` if it has 32 bits or more, else float32.

  >>> at_least_float32(jnp.bfloat16), at_least_float32(jnp.float64)
  (dtype('float32'), dtype('float64'))
  """
  return jnp.dtype(dtype) if jnp.finfo(dtype).bits >= 32 else jnp.dtype(jnp.float32)


def interpolation_dtype(carry_dtype, gate_dtype) -> jnp.dtype:
  """The wider of the carry and gate dtypes: the dtype of :math:`h' = n + z (h - n)`.

  >>> interpolation_dtype(jnp.float32, jnp.bfloat16)
  dtype('float32')
  """
  carry_dtype, gate_dtype = jnp.dtype(carry_dtype), jnp.dtype(gate_dtype)
  return carry_dtype if jnp.finfo(carry_dtype).bits >= jnp.finfo(gate_dtype).bits else gate_dtype


def accumulation_dtype(compute, carry_dtype) -> jnp.dtype:
  """The dtype of sums over steps and rows: the wider of ``compute`` and the carry, at least float32.

  >>> accumulation_dtype(jnp.bfloat16, jnp.bfloat16)
  dtype('float32')
  """
  return at_least_float32(interpolation_dtype(carry_dtype, compute))


def promote_inputs(x, param_dtype):
  """``x`` as an array; integer and boolean inputs become ``param_dtype`` (what Flax's cells do).

  >>> promote_inputs(jnp.arange(3), jnp.float32).dtype
  dtype('float32')
  """
  x = jnp.asarray(x)
  if jnp.issubdtype(x.dtype, jnp.integer) or jnp.issubdtype(x.dtype, jnp.bool_):
    return x.astype(param_dtype)
  return x


def init_dtype(param_dtype) -> jnp.dtype:
  """The dtype initializers run in: float32 for half-precision parameters, else ``param_dtype``.

  The orthogonal initializer's QR has no bfloat16/float16 kernel on CPU, and
  drawing in float32 then rounding gives the same distribution on every backend.

  >>> init_dtype(jnp.bfloat16), init_dtype(jnp.complex64)
  (dtype('float32'), dtype('complex64'))
  """
  dtype = jnp.dtype(param_dtype)
  if jnp.issubdtype(dtype, jnp.floating) and jnp.finfo(dtype).bits < 32:
    return jnp.dtype(jnp.float32)
  return dtype
