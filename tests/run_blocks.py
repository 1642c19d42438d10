"""Runs every Python block of Markdown files in one interpreter, each on its own: ``python run_blocks.py FILE...``.

Each block gets a fresh ``__main__`` namespace, and afterwards the interpreter is
put back as it was before it: ``sys.path``, ``os.environ``, the working folder and
every module it imported from a plain folder (``experiments/``'s ``training``
package, for instance; not installed packages nor ``jaxgru``) are restored or forgotten, so a block that
leans on an earlier block's imports, path or variables fails as it would alone.
One interpreter start for all blocks instead of one each: JAX, Flax and PyTorch
import once. Prints one JSON line: ``{file: [null or the traceback of block i, ...]}``.
"""

import json
import os
import pathlib
import re
import sys
import sysconfig
import traceback

ROOT = pathlib.Path(__file__).resolve().parents[1]


def python_blocks(path):
  return re.findall(r"```python\n(.*?)```", pathlib.Path(path).read_text(encoding="utf-8"), flags=re.S)


# Where installed packages and the standard library live, and the library itself (installed editable).
_SHARED = tuple(
  {*(sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")), str(ROOT / "jaxgru")}
)


def _local(module):
  """A module imported from a plain folder (experiments/, a block's own path), not installed nor jaxgru."""
  file = getattr(module, "__file__", None)
  return bool(file) and not os.path.abspath(file).startswith(_SHARED)


def run_alone(block, name):
  """The traceback of ``block`` run in a fresh namespace, or None; the interpreter is restored after it."""
  path, environ, cwd, before = list(sys.path), dict(os.environ), os.getcwd(), set(sys.modules)
  try:
    exec(compile(block, name, "exec"), {"__name__": "__main__"})  # noqa: S102 - the README's own code
    return None
  except BaseException:  # noqa: BLE001 - SystemExit too: a block must not exit
    return traceback.format_exc()[-4000:]
  finally:
    sys.path[:] = path
    os.environ.clear()
    os.environ.update(environ)
    os.chdir(cwd)
    for module in set(sys.modules) - before:
      if _local(sys.modules[module]):
        del sys.modules[module]


if __name__ == "__main__":
  results = {}
  for markdown in sys.argv[1:]:
    results[markdown] = [run_alone(block, f"{markdown} block {i}") for i, block in enumerate(python_blocks(markdown))]
  print(json.dumps(results))
