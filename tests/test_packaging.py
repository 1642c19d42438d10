"""The installed package is the library alone: every module of jaxgru imports without any extra."""

import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]

# What a plain `pip install jaxgru` does not bring: the extras, the Pallas kernel's GPU stack (the
# kernel must load only when it runs), and the applications of experiments/. Not listed: yaml and
# orbax, which the extras name too but flax itself requires (flax.linen imports yaml).
NOT_INSTALLED = (
  "pydantic",
  "torch",
  "keras",
  "matplotlib",
  "onnx",
  "onnxruntime",
  "jax.experimental.pallas",
  "training",
  "benchmarking",
)

# Runs in a fresh Python: a finder first on sys.meta_path refuses the blocked modules, then
# jaxgru and every module under it are imported; prints where jaxgru came from and what was imported.
_IMPORT_EVERY_MODULE = """
import importlib, importlib.abc, json, pkgutil, sys

BLOCKED = {blocked!r}

class RefuseBlocked(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    if any(name == b or name.startswith(b + ".") for b in BLOCKED):
      raise ModuleNotFoundError(f"No module named {{name!r}} (blocked: jaxgru must import without it)", name=name)
    return None

sys.meta_path.insert(0, RefuseBlocked())
import jaxgru
names = [m.name for m in pkgutil.walk_packages(jaxgru.__path__, "jaxgru.")]
for name in names:
  importlib.import_module(name)
print(json.dumps({{"file": jaxgru.__file__, "modules": names}}))
"""


def import_every_module(blocked, env):
  """Imports jaxgru and its modules in a child Python that cannot import ``blocked``.

  Args:
    blocked: module names (and their submodules) the child refuses to import.
    env: the child's environment; its PYTHONPATH must put this checkout first.

  Returns:
    ``{"file": jaxgru.__file__, "modules": [names found by pkgutil.walk_packages]}``.
  """
  code = _IMPORT_EVERY_MODULE.format(blocked=tuple(blocked))
  proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_module_imports_without_the_extras(subprocess_env):
  result = import_every_module(NOT_INSTALLED, subprocess_env)
  assert pathlib.Path(result["file"]).parent == REPO / "jaxgru"  # this checkout, not another install
  assert "jaxgru._src.layer" in result["modules"]
  assert not {"jaxgru.training", "jaxgru.benchmark", "jaxgru.config"} & set(result["modules"])
