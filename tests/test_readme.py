"""The README's Python examples run as written, in order, in one namespace."""

import pathlib
import re

import jax
import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks():
  return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_examples():
  assert len(_python_blocks()) >= 3


def test_readme_python_examples_run():
  pytest.importorskip("torch")
  namespace: dict = {}
  for i, block in enumerate(_python_blocks()):
    try:
      # Users run with JAX's default promotion rules (Keras' example needs them), not the suite's strict ones.
      with jax.numpy_rank_promotion("allow"), jax.numpy_dtype_promotion("standard"):
        exec(compile(block, f"README.md python block {i}", "exec"), namespace)
    except Exception as e:  # pragma: no cover - the failure message is the point
      raise AssertionError(f"README python block {i} failed: {e!r}\n{block}") from e
