"""YAML config files validated against typed schemas, with ``key.sub=value`` overrides.

Shared by ``experiments/train.py`` and ``experiments/benchmark.py``. A schema is
a pydantic model whose models all forbid unknown keys (derive from
:class:`Schema`). Every error names the offending key and the file, and is
raised before anything is written.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any
from typing import TypeVar

import pydantic
import yaml

from training import files  # the atomic writer; loads no JAX

S = TypeVar("S", bound="Schema")


class ConfigError(ValueError):
  """A config file or override is malformed, unknown or of the wrong type."""


class Schema(pydantic.BaseModel):
  """Base of config schemas: unknown keys are errors, values are checked strictly."""

  # allow_inf_nan=False: a bound such as gt=0 lets inf through (and nan would reach training).
  # use_attribute_docstrings: a field's docstring is its description (the docs' config reference).
  model_config = pydantic.ConfigDict(
    extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False, use_attribute_docstrings=True
  )


def _set_dotted(tree: dict, dotted: str, value: Any, source: str) -> None:
  keys = dotted.split(".")
  if not all(keys):
    raise ConfigError(f"{source}: malformed override key {dotted!r}")
  node = tree
  for key in keys[:-1]:
    child = node.setdefault(key, {})
    if not isinstance(child, dict):
      raise ConfigError(f"{source}: cannot set {dotted!r}: {key!r} is not a section")
    node = child
  node[keys[-1]] = value


def parse_overrides(overrides: Sequence[str]) -> list[tuple[str, Any]]:
  """Parses ``key.sub=value`` strings; values are read as YAML (``1e-3``, ``[1, 2]``, ``true``).

  Raises:
    ConfigError: an override without ``=`` or with an unparsable value.
  """
  parsed = []
  for item in overrides:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
      raise ConfigError(f"override {item!r} must look like key.sub=value")
    try:
      value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
      raise ConfigError(f"override {item!r}: value is not valid YAML ({e})") from None
    parsed.append((key.strip(), value))
  return parsed


def _describe(error: dict) -> str:
  where = ".".join(str(p) for p in error["loc"]) or "<top level>"
  if error["type"] == "extra_forbidden":
    return f"unknown key {where!r}"
  if error["type"] == "missing":
    return f"missing required key {where!r}"
  if error["type"] == "value_error" and not error["loc"]:  # a check across sections names its own keys
    return error["msg"].removeprefix("Value error, ")
  return f"key {where!r}: {error['msg']} (got {error.get('input')!r})"


def validate(schema: type[S], data: Any, source: str) -> S:
  """Validates a plain dict against ``schema``.

  Raises:
    ConfigError: naming every unknown, missing or mistyped key and ``source``.
  """
  if not isinstance(data, dict):
    raise ConfigError(f"{source}: the top level must be a mapping of keys, got {type(data).__name__}")
  try:
    return schema.model_validate(data)
  except pydantic.ValidationError as e:
    problems = "; ".join(_describe(err) for err in e.errors())
    raise ConfigError(f"{source}: {problems}") from None


def load_config(schema: type[S], path: str | os.PathLike, overrides: Sequence[str] = ()) -> S:
  """Reads a YAML file, applies ``key.sub=value`` overrides and validates it.

  Args:
    schema: the :class:`Schema` subclass to validate against.
    path: the YAML file.
    overrides: command-line overrides, applied in order.

  Returns:
    The validated, frozen config.

  Raises:
    FileNotFoundError: ``path`` does not exist.
    ConfigError: ``path`` is a directory or not UTF-8, malformed YAML, unknown
      keys, wrong types, missing values.
  """
  path = os.fspath(path)
  if os.path.isdir(path):
    raise ConfigError(f"config file {path!r} is a directory; give a YAML file, e.g. configs/energy_default.yaml")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"config file {path!r} does not exist")
  with open(path, encoding="utf-8") as f:
    try:
      data = yaml.safe_load(f)
    except UnicodeDecodeError as e:
      raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); is it a YAML file?") from None
    except yaml.YAMLError as e:
      raise ConfigError(f"{path}: not valid YAML: {e}") from None
  data = {} if data is None else data
  if not isinstance(data, dict):
    raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
  for key, value in parse_overrides(overrides):
    _set_dotted(data, key, value, f"{path} (override {key}={value!r})")
  return validate(schema, data, path + (f" with overrides {list(overrides)}" if overrides else ""))


def dump_config(config: Schema, path: str | os.PathLike) -> None:
  """Writes the resolved config as YAML (read back by :func:`load_config`), whole or not at all.

  Raises:
    training.files.DiskFault: the disk is full or the folder may not be written.
  """
  with files.atomic_write(os.fspath(path)) as f:
    yaml.safe_dump(config.model_dump(mode="json"), f, sort_keys=False)
