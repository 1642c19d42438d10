"""The benchmark's config schema, read with :func:`config_files.load_config`.

A config lists the problems (shapes, dtypes, modes) and how to time them; see
``configs/bench/*.yaml`` for documented examples. Shapes use the package legend
``[B, T, I, H]``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Annotated, Literal

import pydantic

import config_files as config_lib
from benchmarking import registry

PositiveInt = Annotated[int, pydantic.Field(strict=True, gt=0)]
Shape = tuple[PositiveInt, PositiveInt, PositiveInt, PositiveInt]  # [B, T, I, H]
DType = Literal["float32", "bfloat16", "float16"]


class Tolerance(config_lib.Schema):
  """A result passes when ``max|x - ref| <= atol + rtol * max|ref|`` for every array."""

  atol: Annotated[float, pydantic.Field(ge=0)]
  rtol: Annotated[float, pydantic.Field(ge=0)]


def _default_tolerances() -> dict[str, Tolerance]:
  # Against a float32 reference: float32 peers differ by summation order only;
  # half-precision peers round every matmul input (8 mantissa bits for bfloat16).
  return {
      "float32": Tolerance(atol=1e-4, rtol=1e-4),
      "bfloat16": Tolerance(atol=0.1, rtol=0.1),
      "float16": Tolerance(atol=0.02, rtol=0.02),
  }


class Implementations(config_lib.Schema):
  """Which rows to time, by registered name (``jaxgru.scan``, ``flax``, ``torch``, ...).

  An empty ``include`` means every registered row; ``exclude`` is applied after.
  """

  include: tuple[str, ...] = ()
  exclude: tuple[str, ...] = ()

  @pydantic.field_validator("include", "exclude")
  @classmethod
  def _known(cls, names: tuple[str, ...]) -> tuple[str, ...]:
    known = registry.peer_names()
    unknown = [n for n in names if n not in known]
    if unknown:
      raise ValueError(f"unknown implementations {unknown}; registered: {list(known)}")
    return names

  def selected(self) -> tuple[str, ...]:
    """Registered names to run, in registry order."""
    names = self.include or registry.peer_names()
    return tuple(n for n in registry.peer_names() if n in names and n not in self.exclude)


class BenchConfig(config_lib.Schema):
  """Everything one benchmark run needs; every key is documented in ``configs/bench/cpu.yaml``."""

  shapes: Annotated[tuple[Shape, ...], pydantic.Field(min_length=1)]  # each [B, T, I, H]
  dtypes: Annotated[tuple[DType, ...], pydantic.Field(min_length=1)] = ("float32",)
  modes: Annotated[tuple[registry.Mode, ...], pydantic.Field(min_length=1)] = (
      registry.Mode.FORWARD, registry.Mode.FORWARD_BACKWARD)
  num_layers: PositiveInt = 1
  repeats: Annotated[int, pydantic.Field(strict=True, ge=10)] = 10  # timed calls per row, after warm-up
  warmup: Annotated[int, pydantic.Field(strict=True, ge=0)] = 1  # untimed calls after the first (compiling) one
  seed: Annotated[int, pydantic.Field(strict=True, ge=0)] = 0
  implementations: Implementations = Implementations()
  torch_threads: PositiveInt | None = None  # None: PyTorch's default
  tolerances: dict[DType, Tolerance] = pydantic.Field(default_factory=_default_tolerances)
  output_dir: Annotated[str, pydantic.Field(min_length=1)]

  @pydantic.model_validator(mode="after")
  def _tolerance_per_dtype(self) -> "BenchConfig":
    missing = [d for d in self.dtypes if d not in self.tolerances]
    if missing:
      raise ValueError(f"tolerances has no entry for dtypes {missing}")
    return self


def load(path: str | os.PathLike, overrides: Sequence[str] = ()) -> BenchConfig:
  """Reads a benchmark config file with ``key.sub=value`` overrides.

  Raises:
    FileNotFoundError: ``path`` does not exist.
    config_files.ConfigError: unknown keys, wrong types or values.
  """
  return config_lib.load_config(BenchConfig, path, overrides)
