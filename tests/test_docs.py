"""The documentation cannot rot: its examples run, and the API reference lists exactly the public names.

* Every Python block of ``README.md``, ``experiments/README.md`` and ``docs/**/*.md`` runs on its
  own, exactly as written (``tests/run_blocks.py``: one interpreter per group of pages, each block
  in a fresh namespace).
* ``docs/api.md`` documents every public name and nothing else (as optax's
  ``docs/ext/coverage_check.py`` does for optax), and the README opens with the two commands
  that CI runs, beside the lint and docs commands of its "Checks".
"""

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
DOCS = sorted((ROOT / "docs").rglob("*.md"))
RUNNER = ROOT / "tests" / "run_blocks.py"
PUBLIC_SUBMODULES = ("gates", "nnx", "mingru", "interop", "export")


def _run_blocks(paths: list[pathlib.Path], pythonpath: list[pathlib.Path]):
  """Runs every Python block of ``paths`` in one fresh interpreter, each on its own (tests/run_blocks.py)."""
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": os.pathsep.join(map(str, pythonpath))}
  env.pop("XLA_FLAGS", None)
  result = subprocess.run(
    [sys.executable, str(RUNNER), *map(str, paths)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
  )
  assert result.returncode == 0, result.stderr[-3000:]
  outcome = json.loads(result.stdout.strip().splitlines()[-1])
  blocks = {str(p): run_blocks.python_blocks(p) for p in paths}
  assert {k: len(v) for k, v in outcome.items()} == {k: len(v) for k, v in blocks.items()}
  failed = [
    f"{path} python block {i} failed:\n{blocks[path][i]}\n--- traceback ---\n{error}"
    for path, errors in outcome.items()
    for i, error in enumerate(errors)
    if error
  ]
  assert not failed, "\n\n".join(failed)


def test_every_python_block_of_the_library_pages_runs_alone():
  pytest.importorskip("torch")
  # This checkout's jaxgru and nothing else: experiments/ is not on the path, as for a user.
  pages = [README] + [p for p in DOCS if p.name != "applications.md"]
  _run_blocks(pages, [ROOT])


def test_every_python_block_of_the_application_pages_runs_alone():
  # As those pages say: from the repository root (experiments/README.md: with experiments/ on the path).
  _run_blocks([EXPERIMENTS_README, ROOT / "docs" / "applications.md"], [ROOT, ROOT / "experiments"])


def test_a_block_that_leans_on_an_earlier_block_fails(tmp_path):
  (tmp_path / "leaned_on.py").write_text("VALUE = 1\n")
  path = list(sys.path)
  first = f"import sys\nsys.path.insert(0, {str(tmp_path)!r})\nimport leaned_on\nx = leaned_on.VALUE"
  assert run_blocks.run_alone(first, "first") is None
  assert sys.path == path and "leaned_on" not in sys.modules
  assert "NameError: name 'x' is not defined" in run_blocks.run_alone("print(x)", "second")
  assert "ModuleNotFoundError" in run_blocks.run_alone("import leaned_on", "third")
  assert "SystemExit" in run_blocks.run_alone("raise SystemExit(0)", "fourth")


def documented_names() -> dict[str, set[str]]:
  """``{module: names}`` that docs/api.md documents (``.. auto*::`` and ``.. py:data::`` under ``currentmodule``)."""
  names, module = {}, None
  for line in (ROOT / "docs" / "api.md").read_text(encoding="utf-8").splitlines():
    if match := re.match(r"\.\. (?:current)?module:: (\S+)", line):
      module = match.group(1)
    elif match := re.match(r"\.\. (?:auto\w+|py:data|py:function|py:class):: (\w+)", line):
      names.setdefault(module, set()).add(match.group(1))
  return names


def test_the_api_reference_lists_exactly_the_public_names():
  import jaxgru  # noqa: PLC0415

  public = {"jaxgru": set(jaxgru.__all__) - set(PUBLIC_SUBMODULES)}
  for name in PUBLIC_SUBMODULES:
    public[f"jaxgru.{name}"] = set(getattr(jaxgru, name).__all__)
  assert documented_names() == public


def test_readme_opens_with_the_two_commands_and_ci_runs_the_checks():
  text = README.read_text(encoding="utf-8")
  bash = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
  commands = [line for line in bash[0].splitlines() if line and not line.startswith("#")]
  assert commands == [
    'pip install -e ".[train]" && python experiments/train.py --config configs/energy_default.yaml',
    'pip install -e ".[test]" && python -m pytest -q',
  ]
  checks = text[text.index("## Checks") :].split("\n## ", 1)[0]
  (check_block,) = re.findall(r"```bash\n(.*?)```", checks, flags=re.S)
  ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
  for command in [commands[1], *check_block.strip().splitlines()]:
    assert command in ci, f"CI does not run the README's command {command!r}"
  assert len(text.splitlines()) <= 200


def test_every_config_key_says_what_it_means():
  """docs/configs.md is generated from the schema's docstrings (docs/ext/config_reference.py): none is missing."""
  from training import schema  # noqa: PLC0415

  sections = [schema.EnergyTask, schema.AddingTask, schema.DigitsTask, schema.Model, schema.Optimizer, schema.Train]
  subsections = {"task", "model", "optimizer", "train"}  # TrainConfig's own keys besides these: seed
  keys = [(schema.TrainConfig, n) for n in schema.TrainConfig.model_fields if n not in subsections]
  keys += [(section, name) for section in sections for name in section.model_fields]
  missing = [f"{section.__name__}.{name}" for section, name in keys if not section.model_fields[name].description]
  assert not missing, missing
