"""The FloydHub GRU post's sequence model: a recurrent backbone, then ReLU and a Linear layer on the last step.

``kind="gru"`` uses :class:`jaxgru.GRU`; ``kind="lstm"`` is the baseline the
post compares against, a stack of flax ``nn.RNN(nn.LSTMCell)`` layers with the
same dropout between layers (as PyTorch's ``nn.LSTM(dropout=...)``).

``highway=K > 0`` adds LSTNet's linear autoregressive "highway" (Lai et al.
2018, section 3.6) to the output: a Linear layer on the last K values of the
first input feature (the load, in the energy task). The recurrent part then
only has to learn what a linear autoregression misses. Its weights start at
the persistence forecast (1 on the last value, 0 elsewhere), so training starts
from the naive last-hour forecast and learns the change from it, a residual
target (what each start measured: experiments/results/energy_levers).
``highway=0`` is the post's model.

.. math::

   \hat y = W_o\,\mathrm{relu}(h_T) + b_o + \sum_{k=1}^{K} a_k\, x_{T-K+k,\,0} + c,
   \qquad a_K = 1,\ a_{k<K} = 0,\ c = 0 \text{ at initialization}

Example:

>>> import jax, jax.numpy as jnp
>>> model = SequenceModel(kind="lstm", hidden=8, num_layers=1, outputs=1)
>>> x = jnp.ones((3, 5, 4))  # [B, T, I]
>>> variables = model.init(jax.random.key(0), x)
>>> model.apply(variables, x).shape  # [B, outputs]
(3, 1)
>>> count_params(variables["params"])  # 4 gates x (4x8 input + 8x8 recurrent + 8 bias) + 8 + 1
425
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import jaxgru

Array = jax.Array
KINDS = ("gru", "lstm")


def persistence_init(key: Array, shape: tuple[int, int], dtype=jnp.float32) -> Array:
  """A highway kernel ``[K, outputs]`` that copies the last of the K values: zeros, and ones in the last row."""
  del key  # deterministic
  return jnp.zeros(shape, dtype).at[-1].set(1.0)


class SequenceModel(nn.Module):
  """Recurrent backbone + ``Dense(outputs)(relu(h_T))``, as the post's ``GRUNet`` / ``LSTMNet``.

  Attributes:
    kind: ``"gru"`` (:class:`jaxgru.GRU`) or ``"lstm"`` (flax ``LSTMCell``).
    hidden: H.
    num_layers: L.
    dropout: dropout between recurrent layers while training (RNG stream ``'dropout'``).
    outputs: size of the prediction (1 for regression, classes for classification).
    highway: K, the last steps of input feature 0 read by the linear autoregressive term; 0: none (the post's model).
  """

  kind: str = "gru"
  hidden: int = 256
  num_layers: int = 2
  dropout: float = 0.0
  outputs: int = 1
  highway: int = 0

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"unknown model kind {self.kind!r}; expected one of {KINDS}")
    if not isinstance(self.outputs, int) or self.outputs < 1:
      raise ValueError(f"outputs must be a positive integer, got {self.outputs!r}")
    if not isinstance(self.highway, int) or self.highway < 0:
      raise ValueError(
        f"highway must be a non-negative integer (steps of the linear autoregressive term), got {self.highway!r}"
      )
    super().__post_init__()

  @nn.compact
  def __call__(self, inputs: Array, *, deterministic: bool = True) -> Array:
    """Maps ``inputs [B, T, I]`` to predictions ``[B, outputs]`` from the last step."""
    if self.highway > inputs.shape[1]:
      raise ValueError(f"highway ({self.highway}) is longer than the input sequence (T={inputs.shape[1]})")
    if self.kind == "gru":
      hs, _ = jaxgru.GRU(self.hidden, num_layers=self.num_layers, dropout=self.dropout, name="gru")(
        inputs, deterministic=deterministic
      )  # [B, T, H]
    else:
      if not isinstance(self.num_layers, int) or self.num_layers < 1:
        raise ValueError(f"num_layers must be a positive integer, got {self.num_layers!r}")
      hs = inputs
      for layer in range(self.num_layers):
        hs = nn.RNN(nn.LSTMCell(self.hidden), name=f"lstm_{layer}")(hs)  # [B, T, H]
        if self.dropout and layer < self.num_layers - 1:
          hs = nn.Dropout(self.dropout)(hs, deterministic=deterministic)
    prediction = nn.Dense(self.outputs, name="head")(nn.relu(hs[:, -1]))  # [B, outputs]
    if self.highway:
      # Lai et al. 2018, sec. 3.6. Initialized to the persistence forecast (the last value, weight 1), so
      # training starts from the naive last-hour forecast and the rest learns the change from it.
      prediction += nn.Dense(self.outputs, kernel_init=persistence_init, name="highway")(inputs[:, -self.highway :, 0])
    return prediction


def count_params(params) -> int:
  """Number of scalars in a parameter tree."""
  return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(params)))
