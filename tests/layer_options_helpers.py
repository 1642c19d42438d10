"""Shared pieces of the layer-option tests: the sizes, random inputs and fully random variables."""

import jax
import jax.numpy as jnp

B, I, H = 3, 4, 5


def inputs(key, shape, scale=1.0):
  """Normal float32 inputs of ``shape`` drawn from the integer seed ``key``, times ``scale``."""
  return scale * jax.random.normal(jax.random.key(key), shape, jnp.float32)


def random_variables(layer, x, key=0, scale=0.5):
  """Variables of ``layer`` with all parameters (biases too) drawn at random."""
  variables = jax.jit(layer.init)(jax.random.key(key), x)
  leaves, treedef = jax.tree_util.tree_flatten(variables)
  keys = jax.random.split(jax.random.key(key + 1), len(leaves))
  leaves = [scale * jax.random.normal(k, leaf.shape, leaf.dtype) for k, leaf in zip(keys, leaves)]
  return jax.tree_util.tree_unflatten(treedef, leaves)
