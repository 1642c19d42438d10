"""Every Python block of both READMEs runs on its own in a fresh interpreter, exactly as written;
the README lists jaxgru's public API."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXPERIMENTS_README = ROOT / "experiments" / "README.md"


def _python_blocks(path: pathlib.Path = README) -> list[str]:
  return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


def _run_block(block: str, what: str, pythonpath: list[pathlib.Path]):
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": os.pathsep.join(map(str, pythonpath))}
  env.pop("XLA_FLAGS", None)
  result = subprocess.run([sys.executable, "-c", block], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, f"{what} failed:\n{block}\n--- stderr ---\n{result.stderr[-3000:]}"


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


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_readme_python_block_runs_alone(index):
  pytest.importorskip("torch")
  # This checkout's jaxgru and nothing else: experiments/ is not on the path, as for a user.
  _run_block(_python_blocks()[index], f"README python block {index}", [ROOT])


@pytest.mark.parametrize("index", range(len(_python_blocks(EXPERIMENTS_README))))
def test_experiments_readme_python_block_runs_alone(index):
  # As that README says: from the repository root with experiments/ on the path.
  _run_block(_python_blocks(EXPERIMENTS_README)[index], f"experiments/README.md block {index}", [ROOT, ROOT / "experiments"])


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
