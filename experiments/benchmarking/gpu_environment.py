"""The environment of a GPU check run: device, driver, versions and the exact command."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from importlib import metadata

import jax

from benchmarking import results as results_lib


def _version(package: str) -> str | None:
  try:
    return metadata.version(package)
  except metadata.PackageNotFoundError:
    return None


def environment(command: Sequence[str]) -> dict:
  """Device, driver, versions and the exact command (:func:`benchmarking.results.environment` and more)."""
  env = results_lib.environment()
  env["command"] = " ".join(command)
  env["devices"] = [str(d) for d in jax.devices()]
  env["versions"].update(
    {
      p: _version(p)
      for p in (
        "jax-cuda13-plugin",
        "jax-cuda13-pjrt",
        "jax-cuda12-plugin",
        "optax",
        "orbax-checkpoint",
        "pydantic",
        "tensorboardX",
        "triton",
      )
    }
  )
  try:
    smi = subprocess.run(
      ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit", "--format=csv,noheader"],
      capture_output=True,
      text=True,
      timeout=20,
      check=True,
    )
    env["nvidia_smi"] = smi.stdout.strip()
  except (OSError, subprocess.SubprocessError) as e:
    env["nvidia_smi"] = f"not available ({type(e).__name__})"
  try:
    import torch  # noqa: PLC0415  (optional)

    env["torch_cuda"] = torch.version.cuda
    env["torch_cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
  except ImportError:
    pass
  env["platform"] = platform.platform()
  env["xla_flags"] = os.environ.get("XLA_FLAGS", "")
  return env
