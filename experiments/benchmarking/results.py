"""What one benchmark run found: per-row and per-case records, ratios, environment."""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import subprocess
from importlib import metadata

import jax

from benchmarking.problem import case_label
from benchmarking.registry import DEFAULT_BASELINES
from benchmarking.timing import Stats

BASELINES = DEFAULT_BASELINES  # rows every other row is compared with, unless its mode registers others


@dataclasses.dataclass(frozen=True)
class RowResult:
  """One row (peer) of one case."""

  name: str  # registered peer name, e.g. "jaxgru.scan"
  status: str  # "ok", "mismatch" (failed the equality check), "error", "skipped"
  message: str = ""  # check summary, or why the row failed or was skipped
  framework: str = ""  # "jax" or "torch"
  max_abs_diff: float | None = None  # against the reference, over all result arrays
  diffs: dict = dataclasses.field(default_factory=dict)  # {array name: max abs diff}
  first_call_s: float | None = None  # JAX: trace + compile + one run
  times_s: tuple[float, ...] = ()  # every timed call, in order
  stats: Stats | None = None
  tokens_per_s: float | None = None  # B * T / median
  memory_bytes: int | None = None  # None where the backend reports no device memory
  ratio_to: dict = dataclasses.field(default_factory=dict)  # {"flax": median / flax's median, ...}
  first_call_ratio_to: dict = dataclasses.field(default_factory=dict)  # same for first_call_s
  memory_ratio_to: dict = dataclasses.field(default_factory=dict)  # same for memory_bytes, where reported

  @property
  def timed(self) -> bool:
    """Whether the row passed the check and has timings."""
    return self.status == "ok" and self.stats is not None


@dataclasses.dataclass(frozen=True)
class CaseResult:
  """All rows of one (shape, dtype, mode)."""

  shape: tuple[int, int, int, int]  # (B, T, I, H)
  dtype: str
  mode: str  # a registry.Mode value
  num_layers: int
  rows: tuple[RowResult, ...]
  bidirectional: bool = False
  baselines: tuple[str, ...] = BASELINES  # the rows' ratio_to keys (registry.baselines of the mode)
  rooflines: tuple = ()  # benchmarking.roofline.RowRoofline of the rows the config's roofline names

  @property
  def label(self) -> str:
    """``BxTxIxH``, with `` L{layers}`` and `` bi`` where they are not one (:func:`~benchmarking.problem.case_label`)."""
    return case_label(self.shape, self.num_layers, self.bidirectional)


@dataclasses.dataclass(frozen=True)
class Report:
  """A whole run: where and how it ran, and its cases."""

  environment: dict
  config: dict  # the resolved config
  wall_s: float  # total run time
  cases: tuple[CaseResult, ...]


def with_ratios(rows: list[RowResult], baselines: tuple[str, ...] = BASELINES) -> list[RowResult]:
  """Adds each row's time ratios to the rows named in ``baselines`` of the same case that were timed."""
  baselines = {r.name: r for r in rows if r.name in baselines and r.timed}
  out = []
  for row in rows:
    if not row.timed:
      out.append(row)
      continue
    ratio = {b: row.stats.median / base.stats.median for b, base in baselines.items()}
    first = {
      b: row.first_call_s / base.first_call_s for b, base in baselines.items() if row.first_call_s and base.first_call_s
    }
    memory = {
      b: row.memory_bytes / base.memory_bytes for b, base in baselines.items() if row.memory_bytes and base.memory_bytes
    }
    out.append(dataclasses.replace(row, ratio_to=ratio, first_call_ratio_to=first, memory_ratio_to=memory))
  return out


def _version(package: str) -> str | None:
  try:
    return metadata.version(package)
  except metadata.PackageNotFoundError:
    return None


def _git_commit() -> str | None:
  try:
    here = os.path.dirname(os.path.abspath(__file__))
    commit = subprocess.run(
      ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, cwd=here
    )
    branch = subprocess.run(["git", "rev-parse", "--abbrev-ref", "HEAD"], capture_output=True, text=True, cwd=here)
    dirty = subprocess.run(
      ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=here
    ).stdout.strip()
    return f"{branch.stdout.strip()}@{commit.stdout.strip()}" + ("+dirty" if dirty else "")
  except (OSError, subprocess.CalledProcessError):
    return None


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def environment() -> dict:
  """Where the run happens: device, backend, versions, CPU count, git commit, UTC time."""
  device = jax.devices()[0]
  env = {
    "utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "jax_backend": jax.default_backend(),
    "jax_device": getattr(device, "device_kind", str(device)),
    "cpu": _cpu_model(),
    "cpu_count": os.cpu_count(),
    "python": platform.python_version(),
    "git_commit": _git_commit(),
    "versions": {p: _version(p) for p in ("jax", "jaxlib", "flax", "torch", "equinox", "numpy")},
  }
  try:
    import torch  # noqa: PLC0415  (optional)

    env["torch_device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    env["torch_threads"] = torch.get_num_threads()
    env["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY")
  except ImportError:
    pass
  stats = device.memory_stats()
  if stats:
    env["device_memory_bytes_limit"] = stats.get("bytes_limit")
  return env
