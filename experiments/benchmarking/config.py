"""The benchmark's config schema, read with :func:`config_files.load_config`.

A config lists the problems (shapes, dtypes, modes) and how to time them; see
``configs/bench/*.yaml`` for documented examples. Shapes use the package legend
``[B, T, I, H]``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Annotated
from typing import Literal

import pydantic

from benchmarking import registry
from training import config_files as config_lib

PositiveInt = Annotated[int, pydantic.Field(strict=True, gt=0)]
Shape = tuple[PositiveInt, PositiveInt, PositiveInt, PositiveInt]  # [B, T, I, H]
DType = Literal["float32", "bfloat16", "float16"]
Device = Literal["any", "gpu"]  # "gpu": a config sized for a GPU, refused on a machine without one


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
    registry.Mode.FORWARD,
    registry.Mode.FORWARD_BACKWARD,
  )
  num_layers: PositiveInt = 1
  bidirectional: bool = False  # D = 2 directions per layer
  repeats: Annotated[int, pydantic.Field(strict=True, ge=10)] = 10  # timed calls per row, after warm-up
  warmup: Annotated[int, pydantic.Field(strict=True, ge=0)] = 1  # untimed calls after the first (compiling) one
  seed: Annotated[int, pydantic.Field(strict=True, ge=0)] = 0
  implementations: Implementations = Implementations()
  torch_threads: PositiveInt | None = None  # None: PyTorch's default
  tolerances: dict[DType, Tolerance] = pydantic.Field(default_factory=_default_tolerances)
  # The committed results of this config; a run writes there only when asked (--update-results).
  results_dir: Annotated[str, pydantic.Field(min_length=1)]
  device: Device = "any"
  cpu_smoke_shapes: tuple[Shape, ...] = ()  # each [B, T, I, H]: what --cpu-smoke runs instead of shapes
  # JAX rows whose program gets a measured roofline in every case (roofline.md; benchmarking.roofline)
  roofline: tuple[str, ...] = ()
  # XLA flag sets each product is timed under too, on the CPU, each in a fresh process (never set for the rows)
  roofline_xla_flags: tuple[Annotated[str, pydantic.StringConstraints(pattern=r"^--xla_\S+(\s+--xla_\S+)*$")], ...] = (
    "--xla_cpu_experimental_xnn_fusion_type=dot",
    "--xla_cpu_experimental_onednn_fusion_type=dot",
  )

  @pydantic.model_validator(mode="after")
  def _tolerance_per_dtype(self) -> BenchConfig:
    missing = [d for d in self.dtypes if d not in self.tolerances]
    if missing:
      raise ValueError(f"tolerances has no entry for dtypes {missing}")
    return self

  @pydantic.model_validator(mode="after")
  def _roofline_rows(self) -> BenchConfig:
    unknown = [n for n in self.roofline if n not in registry.peer_names()]
    if unknown:
      raise ValueError(f"roofline names unknown rows {unknown}; registered: {list(registry.peer_names())}")
    foreign = [n for n in self.roofline if "torch" in registry.get_peer(n).requires]
    if foreign:
      raise ValueError(f"roofline reads a compiled XLA program; {foreign} are not JAX rows")
    return self


class DeviceError(RuntimeError):
  """A config sized for a GPU was asked to run where JAX sees none."""


def for_this_machine(
  config: BenchConfig, backend: str, *, cpu_smoke: bool = False, name: str = "the config"
) -> BenchConfig:
  """The config to run on a machine whose JAX backend is ``backend``.

  A ``device: gpu`` config runs as it is on a GPU. Without one it is refused
  (its sizes ran for over 8 minutes on 2 CPU cores before they were stopped),
  unless ``cpu_smoke`` asks for its ``cpu_smoke_shapes``, which check its
  settings in seconds. ``cpu_smoke`` on a GPU, or for a config without smoke
  shapes, is refused too: it would time something else than asked.

  Raises:
    DeviceError: one line saying why and what to do instead.

  >>> config = config_lib.validate(BenchConfig, {"shapes": [[64, 2048, 256, 256]], "device": "gpu",
  ...                                 "cpu_smoke_shapes": [[4, 64, 16, 16]], "results_dir": "r"}, "example")
  >>> for_this_machine(config, "cpu", cpu_smoke=True).shapes
  ((4, 64, 16, 16),)
  >>> for_this_machine(config, "cpu", name="gpu.yaml")
  Traceback (most recent call last):
  ...
  benchmarking.config.DeviceError: gpu.yaml is a GPU config and JAX sees no GPU here (backend 'cpu'); add --cpu-smoke to check its settings at its CPU sizes ([[4, 64, 16, 16]]), or use configs/bench/cpu.yaml
  """
  if config.device == "gpu" and backend != "gpu" and not cpu_smoke:
    sizes = [list(s) for s in config.cpu_smoke_shapes]
    hint = f"add --cpu-smoke to check its settings at its CPU sizes ({sizes}), or " if sizes else ""
    raise DeviceError(
      f"{name} is a GPU config and JAX sees no GPU here (backend {backend!r}); {hint}use configs/bench/cpu.yaml"
    )
  if not cpu_smoke:
    return config
  if backend == "gpu":
    raise DeviceError("--cpu-smoke runs a GPU config at CPU sizes; this machine has a GPU: drop --cpu-smoke")
  if not config.cpu_smoke_shapes:
    raise DeviceError(f"{name} has no cpu_smoke_shapes for --cpu-smoke")
  return config.model_copy(update={"shapes": config.cpu_smoke_shapes})


def load(path: str | os.PathLike, overrides: Sequence[str] = ()) -> BenchConfig:
  """Reads a benchmark config file with ``key.sub=value`` overrides.

  Raises:
    FileNotFoundError: ``path`` does not exist.
    config_files.ConfigError: unknown keys, wrong types or values.
  """
  return config_lib.load_config(BenchConfig, path, overrides)
