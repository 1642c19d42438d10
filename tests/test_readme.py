"""Every Python block of both READMEs runs on its own, exactly as written (one interpreter per README);
the README lists jaxgru's public API."""

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
import run_blocks

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXPERIMENTS_README = ROOT / "experiments" / "README.md"
RUNNER = ROOT / "tests" / "run_blocks.py"


def _run_blocks(path: pathlib.Path, pythonpath: list[pathlib.Path]):
  """Runs every Python block of ``path`` in one fresh interpreter, each on its own (tests/run_blocks.py)."""
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": os.pathsep.join(map(str, pythonpath))}
  env.pop("XLA_FLAGS", None)
  result = subprocess.run([sys.executable, str(RUNNER), str(path)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  blocks = run_blocks.python_blocks(path)
  errors = json.loads(result.stdout.strip().splitlines()[-1])
  assert len(errors) == len(blocks) > 0
  failed = [f"{path.name} python block {i} failed:\n{blocks[i]}\n--- traceback ---\n{error}"
            for i, error in enumerate(errors) if error]
  assert not failed, "\n\n".join(failed)


def test_readme_opens_with_the_two_commands():
  text = README.read_text(encoding="utf-8")
  first_bash = re.search(r"```bash\n(.*?)```", text, flags=re.S).group(1)
  commands = [line for line in first_bash.splitlines() if line and not line.startswith("#")]
  assert commands == [
      'pip install -e ".[train]" && python experiments/train.py --config configs/energy_default.yaml',
      'pip install -e ".[test]" && python -m pytest -q',
  ]
  ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
  assert commands[1] in ci  # CI runs exactly the README's test command


def test_every_readme_python_block_runs_alone():
  pytest.importorskip("torch")
  # This checkout's jaxgru and nothing else: experiments/ is not on the path, as for a user.
  _run_blocks(README, [ROOT])


def test_every_experiments_readme_python_block_runs_alone():
  # As that README says: from the repository root with experiments/ on the path.
  _run_blocks(EXPERIMENTS_README, [ROOT, ROOT / "experiments"])


def test_readme_lists_exactly_the_public_api():
  import jaxgru  # noqa: PLC0415

  text = README.read_text(encoding="utf-8")
  section = text[text.index("### The public API") :].split("\n### ", 1)[0]
  bullets = "\n".join(section.splitlines()[3:])  # after the heading and its sentence
  # Top-level names: every backquoted word outside parentheses (inside them are members).
  listed = set(re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", bullets, flags=re.S)))
  assert listed == set(jaxgru.__all__)
  for name in jaxgru.__all__:
    assert hasattr(jaxgru, name), name
  # Each public submodule's members: the backquoted words in the parentheses after its name.
  for module in ("gates", "nnx", "mingru", "interop", "export"):
    members = re.search(rf"`{module}`\s+\(([^)]*)\)", bullets, flags=re.S)
    assert members, f"the README lists no members for jaxgru.{module}"
    assert set(re.findall(r"`(\w+)`", members.group(1))) == set(getattr(jaxgru, module).__all__), module


def test_a_block_that_leans_on_an_earlier_block_fails(tmp_path):
  (tmp_path / "leaned_on.py").write_text("VALUE = 1\n")
  path = list(sys.path)
  first = f"import sys\nsys.path.insert(0, {str(tmp_path)!r})\nimport leaned_on\nx = leaned_on.VALUE"
  assert run_blocks.run_alone(first, "first") is None
  assert sys.path == path and "leaned_on" not in sys.modules
  assert "NameError: name 'x' is not defined" in run_blocks.run_alone("print(x)", "second")
  assert "ModuleNotFoundError" in run_blocks.run_alone("import leaned_on", "third")
  assert "SystemExit" in run_blocks.run_alone("raise SystemExit(0)", "fourth")
