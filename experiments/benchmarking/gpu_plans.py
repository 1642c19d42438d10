"""The run plans of the prepared GPU check (:mod:`benchmarking.gpu_session`): what one run does, in order.

:func:`full_plan` is the GPU run (KernelBench's, the post's and long shapes, three seeds);
:func:`smoke_plan` takes every code path at tiny sizes in seconds.
"""

from __future__ import annotations

import dataclasses
import os

import jaxgru
from benchmarking import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMPLEMENTATIONS = tuple(i.value for i in jaxgru.Implementation if i is not jaxgru.Implementation.AUTO)
LAYER_ROWS = tuple(f"jaxgru.{i}" for i in IMPLEMENTATIONS) + ("flax", "torch")


@dataclasses.dataclass(frozen=True)
class LayerCase:
  """One timed layer problem."""

  name: str
  shape: tuple[int, int, int, int]  # (B, T, I, H)
  num_layers: int  # L
  bidirectional: bool
  dtype: str  # compute dtype


@dataclasses.dataclass(frozen=True)
class Plan:
  """Everything one run does, in the order it does it; :func:`full_plan` and :func:`smoke_plan`."""

  name: str  # "full" or "smoke"
  accuracy_shape: tuple[int, int, int, int]  # (B, T, I, H), bidirectional, variable lengths
  accuracy_layers: int
  accuracy_pairs: tuple[tuple[str, str], ...]  # (implementation, dtype), in order
  layer_cases: tuple[LayerCase, ...]  # in order of priority: the budget may stop before the last
  train_shape: tuple[int, int, int, int]  # the post's model: (B, T, I, H)
  train_layers: int
  train_rows: tuple[str, ...]
  layer_rows: tuple[str, ...]  # registered benchmark rows
  energy_overrides: tuple[str, ...]  # for configs/energy_gru.yaml and energy_lstm.yaml
  energy_models: tuple[str, ...]  # "gru", "lstm"
  energy_seeds: tuple[int, ...]
  post_epochs: int  # the post's schedule; read off the longer run (constant learning rate)
  long_epochs: int  # the longer schedule
  budget_s: float  # the whole run
  shares: dict  # part -> fraction of budget_s it may use (leftovers pass on to the next part)


def full_plan(budget_s: float = 450.0) -> Plan:
  """The GPU run: about ``budget_s`` seconds (the command's limit must leave a margin for start-up)."""
  gpu = config_lib.load(os.path.join(REPO, "configs", "bench", "gpu.yaml"))
  longest = max(s[1] for s in gpu.shapes)
  long_shapes = [s for s in gpu.shapes if s[1] == longest and s[3] <= 256][:2]  # a few of gpu.yaml's long sequences
  kernelbench = (10, 512, 128, 256)  # nn.GRU(128, 256, num_layers=6), T=512, B=10 (KernelBench level 3)
  post = (1024, 90, 5, 256)  # the FloydHub post: batch 1024, lookback 90, 5 features, 256 hidden, 2 layers
  cases = [
    LayerCase("kernelbench", kernelbench, 6, False, "float32"),
    LayerCase("post", post, 2, False, "float32"),
    LayerCase("kernelbench_bi", kernelbench, 6, True, "float32"),
    LayerCase("kernelbench", kernelbench, 6, False, "bfloat16"),
    LayerCase("post", post, 2, False, "bfloat16"),
    *[LayerCase(f"long_h{s[3]}", tuple(s), 1, False, "float32") for s in long_shapes],
    LayerCase("kernelbench_bi", kernelbench, 6, True, "bfloat16"),
    *[LayerCase(f"long_h{s[3]}", tuple(s), 1, False, "bfloat16") for s in long_shapes],
  ]
  return Plan(
    name="full",
    accuracy_shape=(20, 24, 12, 64),  # B > 16: the Pallas kernel runs two batch blocks
    accuracy_layers=2,
    accuracy_pairs=tuple((i, d) for i in IMPLEMENTATIONS for d in ("float32", "bfloat16")),
    layer_cases=tuple(cases),
    train_shape=post,
    train_layers=2,
    train_rows=LAYER_ROWS,
    layer_rows=LAYER_ROWS,
    energy_overrides=(),
    energy_models=("gru", "lstm"),
    energy_seeds=(0, 1, 2),
    post_epochs=5,
    long_epochs=40,
    budget_s=budget_s,
    shares={"accuracy": 0.12, "layers": 0.40, "train_step": 0.10, "energy": 0.36},
  )


def smoke_plan(budget_s: float = 120.0) -> Plan:
  """Tiny sizes, one seed, each implementation checked once, one row of each kind: every code path in seconds.

  Off a GPU the Pallas rows are refused (their error is the row's result): the
  kernel runs compiled on a GPU only; its interpreter and its lowering for CUDA
  are tested in ``tests/test_internal_runners.py`` and ``tests/test_gpu_check.py``.
  """
  dtypes = ("float32", "bfloat16")
  return Plan(
    name="smoke",
    accuracy_shape=(3, 5, 3, 16),
    accuracy_layers=1,
    accuracy_pairs=tuple((impl, dtypes[k % 2]) for k, impl in enumerate(IMPLEMENTATIONS)),
    layer_cases=(LayerCase("tiny_bi", (2, 6, 3, 16), 2, True, "float32"),),
    train_shape=(8, 6, 5, 16),
    train_layers=2,
    train_rows=("jaxgru.custom_vjp", "jaxgru.pallas", "torch"),
    layer_rows=("jaxgru.custom_vjp", "jaxgru.pallas", "flax", "torch"),
    energy_overrides=(
      "model.hidden=8",
      "model.num_layers=1",
      "task.lookback=6",
      "train.batch_size=4096",
      "train.eval_batch_size=4096",
    ),
    energy_models=("gru",),
    energy_seeds=(0,),
    post_epochs=1,
    long_epochs=2,
    budget_s=budget_s,
    shares={"accuracy": 0.25, "layers": 0.25, "train_step": 0.2, "energy": 0.3},
  )
