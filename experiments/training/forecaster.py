r"""The day-ahead forecaster: a jaxgru encoder over the lookback, a multi-horizon quantile head, a highway per lead.

Inputs are the windows of :class:`training.dayahead.DayAheadData`, ``[B, T + G + F, I]``: the lookback's
``T`` rows (load, known flag, calendar), then the ``G`` gap rows and the ``F`` target rows (calendar only).

- ``head="direct"``: ``Dense(F * Q)`` on ``relu(h_T)`` and the target hours' calendar.
- ``head="decoder"``: a second :class:`jaxgru.GRU` over the gap and target rows' calendar, started from
  the encoder's final state, then ``Dense(Q)`` on each target row.

LSTNet's linear highway (Lai et al. 2018) is one linear map per lead on the last ``K`` loads of the lookback,
started at the seasonal naive forecast (weight 1 on the same hour of the latest known day), added to the
median. The raw outputs become quantiles that never cross (:func:`training.quantiles.noncrossing`):

.. math::

   r = \mathrm{head}(x), \qquad r_{f,m} \mathrel{+}= \textstyle\sum_k a_{f,k}\, x_{T-K+k,\,0} + c_f, \qquad
   \hat q_f = \mathrm{noncrossing}(r_f)

Example:

>>> import jax, jax.numpy as jnp
>>> model = DayAheadModel(hidden=8, num_layers=1, lookback=48, gap=0, horizon=24, levels=(0.1, 0.5, 0.9),
...                       head="decoder", highway=48)
>>> x = jnp.ones((2, 72, 12))  # [B, T + G + F, I]
>>> variables = model.init(jax.random.key(0), x)
>>> model.apply(variables, x).shape  # [B, F * Q], lead-major
(2, 72)
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import jaxgru
from training import dayahead
from training import quantiles

HEADS = ("direct", "decoder")


def seasonal_init(gap: int):
  """A highway kernel ``[K, F]`` that copies, for each lead, the load of the same hour on the latest known day."""

  def init(key, shape, dtype=jnp.float32):
    del key  # deterministic
    k, f = shape
    leads = np.arange(1, f + 1)
    position = k - 1 - (dayahead.seasonal_lag(dayahead.DAY, gap, leads) - gap - leads)  # [F], index in the K lags
    kernel = np.zeros(shape, np.float32)
    valid = position >= 0
    kernel[position[valid], np.nonzero(valid)[0]] = 1.0
    return jnp.asarray(kernel, dtype)

  return init


class DayAheadModel(nn.Module):
  """Encoder GRU + multi-horizon quantile head (+ highway per lead): ``[B, T + G + F, I] -> [B, F * Q]``.

  Attributes:
    hidden: H, of the encoder (and the decoder).
    num_layers: L.
    dropout: between recurrent layers and before the direct head, while training.
    lookback: T.
    gap: G.
    horizon: F.
    levels: the quantile levels ``[Q]``, sorted, with 0.5.
    head: ``"direct"`` or ``"decoder"``.
    highway: K, the last lookback loads read by the linear term per lead; 0: none.
  """

  hidden: int = 64
  num_layers: int = 1
  dropout: float = 0.0
  lookback: int = dayahead.WEEK
  gap: int = 0
  horizon: int = dayahead.DAY
  levels: Sequence[float] = (0.1, 0.5, 0.9)
  head: str = "direct"
  highway: int = 0

  def __post_init__(self):
    if self.head not in HEADS:
      raise ValueError(f"unknown head {self.head!r}; expected one of {HEADS}")
    if not 0 <= self.highway <= self.lookback:
      raise ValueError(f"highway ({self.highway}) must be between 0 and the lookback ({self.lookback})")
    quantiles.median_index(self.levels)
    super().__post_init__()

  @nn.compact
  def __call__(self, inputs: jax.Array, *, deterministic: bool = True) -> jax.Array:
    """Maps windows ``[B, T + G + F, I]`` to quantiles ``[B, F * Q]`` (lead-major, scaled like the load)."""
    t, g, f, q = self.lookback, self.gap, self.horizon, len(self.levels)
    if inputs.ndim != 3 or inputs.shape[1] != t + g + f:
      raise ValueError(f"inputs must be [B, T + G + F = {t + g + f}, I], got {list(inputs.shape)}")
    past, future = inputs[:, :t], inputs[:, t:, 2:]  # the future rows: calendar only
    gru = dict(num_layers=self.num_layers, dropout=self.dropout)
    hs, carry = jaxgru.GRU(self.hidden, **gru, name="encoder")(past, deterministic=deterministic)
    if self.head == "direct":
      features = jnp.concatenate([nn.relu(hs[:, -1]), future[:, g:].reshape(inputs.shape[0], -1)], axis=-1)
      features = nn.Dropout(self.dropout)(features, deterministic=deterministic)
      raw = nn.Dense(f * q, name="head")(features).reshape(-1, f, q)
    else:
      ds, _ = jaxgru.GRU(self.hidden, **gru, name="decoder")(future, initial_carry=carry, deterministic=deterministic)
      raw = nn.Dense(q, name="head")(nn.relu(ds[:, g:]))  # [B, F, Q]
    if self.highway:
      linear = nn.Dense(f, kernel_init=seasonal_init(g), name="highway")(past[:, -self.highway :, 0])  # [B, F]
      raw = raw.at[..., quantiles.median_index(self.levels)].add(linear)
    return quantiles.noncrossing(raw, self.levels).reshape(-1, f * q)
