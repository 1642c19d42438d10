"""The library's shape, read from the source (and one trace per runner): public faces over a private package.

* the public modules hold a docstring, explicit re-exports (``from jaxgru._src.m import n as n``
  or a public submodule) and ``__all__``, nothing else; every name re-exported is listed;
* at most 45 public names are reachable from ``jaxgru.__all__`` and its public submodules;
* only Flax's, JAX's and orbax's public import paths are used, and experiments/ imports no
  ``jaxgru._src``;
* no Python file of the library, the applications or the tests is over 400 lines;
* following ``x`` from the layer to its runner visits each module once (one trace per runner);
* tests follow the layout: a file per public area, and the white-box tests, which import
  ``jaxgru._src``, are in files named ``test_internal_*.py`` (``helpers.py`` builds their runners).
"""

import ast
import pathlib
import re
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PUBLIC = ("__init__", "gates", "nnx", "mingru", "interop", "export")
MAX_PUBLIC_NAMES = 45
MAX_LINES = 400
# Flax's and JAX's private or internal paths: what they may move in any release.
INTERNAL = re.compile(r"^(flax\.(nnx\.nn|linen\.[a-z_]+|core\.[a-z_]+\.)|jax\._src|jaxlib\.|orbax\.checkpoint\._src)")


def python_files(*folders):
  return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py") if "__pycache__" not in p.parts)


def public_module(name):
  """(the names re-exported, ``__all__``) of ``jaxgru.<name>``; fails on any other statement."""
  tree = ast.parse((REPO / "jaxgru" / f"{name}.py").read_text(encoding="utf-8"))
  exported, listed = set(), None
  for i, node in enumerate(tree.body):
    if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
      continue  # the docstring
    if (
      isinstance(node, ast.ImportFrom)
      and node.module in ("jaxgru", "__future__")
      or (isinstance(node, ast.ImportFrom) and node.module.startswith("jaxgru._src."))
    ):
      for alias in node.names:
        if node.module == "__future__":
          continue
        assert alias.asname == alias.name, f"jaxgru/{name}.py: re-export {alias.name} as itself, explicitly"
        exported.add(alias.name)
      continue
    if name == "__init__" and isinstance(node, ast.ImportFrom) and node.module == "importlib":
      continue  # the version, read from the installed metadata into a private name
    if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["__all__"]:
      listed = {ast.literal_eval(e) for e in node.value.elts}
      continue
    if name == "__init__" and isinstance(node, (ast.Assign, ast.Try)) and "__version__" in ast.unparse(node):
      continue
    raise AssertionError(f"jaxgru/{name}.py line {node.lineno} is not a re-export: {ast.unparse(node)[:80]}")
  assert listed is not None, f"jaxgru/{name}.py has no __all__"
  return exported, listed


@pytest.mark.parametrize("name", PUBLIC)
def test_public_modules_only_re_export_what_they_list(name):
  exported, listed = public_module(name)
  assert exported == listed, (
    f"jaxgru/{name}.py: re-exported but not listed {exported - listed}, listed only {listed - exported}"
  )


def test_at_most_45_public_names():
  names = set()
  for name in PUBLIC:
    names |= public_module(name)[1] - set(PUBLIC)
  assert len(names) <= MAX_PUBLIC_NAMES, sorted(names)


def test_only_public_import_paths_outside_the_white_box_tests():
  found = []
  for path in python_files("jaxgru", "experiments", "tests"):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
      modules = (
        [a.name for a in node.names]
        if isinstance(node, ast.Import)
        else [node.module or ""]
        if isinstance(node, ast.ImportFrom)
        else []
      )
      for module in modules:
        relative = path.relative_to(REPO)
        if INTERNAL.match(module) or (relative.parts[0] == "experiments" and module.startswith("jaxgru._src")):
          found.append(f"{relative}:{node.lineno} imports {module}")
        white_box = (
          relative.parts[0] != "tests" or relative.name.startswith("test_internal_") or relative.name == "helpers.py"
        )
        if module.startswith("jaxgru._src") and not white_box:
          found.append(f"{relative}:{node.lineno} imports {module}: white-box tests go in tests/test_internal_*.py")
  assert not found, "\n".join(found)


def test_no_file_over_400_lines():
  long = {
    str(p.relative_to(REPO)): n
    for p in python_files("jaxgru", "experiments", "tests")
    if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
  }
  assert not long, long


def _walk_of_x(gru, x):
  """The modules of jaxgru._src on the call stack where the layer's scan starts: ``[(file, function), ...]``."""
  import jax  # noqa: PLC0415 - the rest of this file reads source only

  variables = gru.init(jax.random.key(0), x)
  stacks = []

  def profile(frame, event, arg):
    del arg
    if (
      event == "call" and frame.f_code.co_name == "scan" and frame.f_code.co_filename.endswith("control_flow/loops.py")
    ):
      stack, f = [], frame.f_back
      while f:
        if f"{pathlib.Path('jaxgru', '_src')}" in f.f_code.co_filename:
          stack.append((pathlib.Path(f.f_code.co_filename).name, f.f_code.co_name))
        f = f.f_back
      stacks.append(stack[::-1])

  sys.setprofile(profile)
  try:
    jax.jit(gru.apply).trace(variables, x)
  finally:
    sys.setprofile(None)
  return max(stacks, key=len)


@pytest.mark.parametrize(
  "options",
  [{"implementation": "scan"}, {"remat": "segments", "remat_segment": 5}, {"implementation": "custom_vjp"}],
  ids=["scan", "remat", "custom_vjp"],
)
def test_following_x_from_the_layer_to_its_runner_visits_each_module_once(options):
  import jax.numpy as jnp  # noqa: PLC0415

  import jaxgru  # noqa: PLC0415

  walk = _walk_of_x(jaxgru.GRU(features=4, num_layers=2, **options), jnp.ones((2, 5, 3)))
  modules = [file for i, (file, _) in enumerate(walk) if i == 0 or file != walk[i - 1][0]]
  assert modules[:3] == ["layer.py", "sequences.py", "dispatch.py"], walk
  assert len(modules) == len(set(modules)), f"x returns to a module it left: {walk}"
