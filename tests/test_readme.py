"""Every Python block of the README runs on its own in a fresh interpreter, exactly as written."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _python_blocks() -> list[str]:
  return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


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
  block = _python_blocks()[index]
  # This checkout's jaxgru and nothing else: experiments/ is not on the path, as for a user.
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
  env.pop("XLA_FLAGS", None)
  result = subprocess.run(
      [sys.executable, "-c", block], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
  )
  assert result.returncode == 0, f"README python block {index} failed:\n{block}\n--- stderr ---\n{result.stderr[-3000:]}"
