"""Sphinx directive ``config-reference``: the training configs' keys, read from their pydantic schema.

``.. config-reference:: training.schema.TrainConfig`` renders one table per
section (and per task kind): each key with its type, default, constraints and
meaning (the field's docstring in ``experiments/training/schema.py``). The page
cannot go stale: a key added to the schema appears, and a key without a
docstring fails the strict build.
"""

from __future__ import annotations

import importlib
import types
import typing

import annotated_types
import pydantic
from docutils import nodes
from docutils.statemachine import StringList
from sphinx.errors import ExtensionError
from sphinx.util.docutils import SphinxDirective

_BOUNDS = {
  annotated_types.Gt: (">", "gt"),
  annotated_types.Ge: (">=", "ge"),
  annotated_types.Lt: ("<", "lt"),
  annotated_types.Le: ("<=", "le"),
}


def _type_name(annotation) -> str:
  """``int``, ``float``, ``str | None``, ``list[str]``, ``"adam" | "sgd"``: the annotation as a reader writes it."""
  origin, args = typing.get_origin(annotation), typing.get_args(annotation)
  if origin is typing.Annotated:
    return _type_name(args[0])
  if origin is typing.Literal:
    return " | ".join(f'"{a}"' if isinstance(a, str) else str(a) for a in args)
  if origin in (typing.Union, types.UnionType):
    return " | ".join("null" if a is type(None) else _type_name(a) for a in args)
  if origin is list:
    return f"list[{_type_name(args[0])}]"
  return getattr(annotation, "__name__", str(annotation))


def _constraints(field: pydantic.fields.FieldInfo) -> str:
  found = []
  for meta in [*field.metadata, *_nested_metadata(field.annotation)]:
    for kind, (symbol, attribute) in _BOUNDS.items():
      if isinstance(meta, kind):
        found.append(f"{symbol} {getattr(meta, attribute)}")
    if isinstance(meta, annotated_types.MinLen):
      found.append(f"at least {meta.min_length} item(s)")
  return ", ".join(found)


def _nested_metadata(annotation) -> list:
  """The constraints inside ``Annotated[...]`` wherever it sits in a union (``PositiveInt | None``)."""
  if typing.get_origin(annotation) is typing.Annotated:
    return list(typing.get_args(annotation)[1:]) + _nested_metadata(typing.get_args(annotation)[0])
  if typing.get_origin(annotation) in (typing.Union, types.UnionType):
    return [m for a in typing.get_args(annotation) for m in _nested_metadata(a)]
  return []


def _sections(schema: type[pydantic.BaseModel], prefix: str = ""):
  """``(title, docstring, [(key, field), ...])`` for ``schema`` and every section under it."""
  leaves, below = [], []
  for name, field in schema.model_fields.items():
    key = f"{prefix}{name}"
    members = [
      a
      for a in typing.get_args(
        typing.get_args(field.annotation)[0]
        if typing.get_origin(field.annotation) is typing.Annotated
        else field.annotation
      )
      if isinstance(a, type) and issubclass(a, pydantic.BaseModel)
    ]
    if isinstance(field.annotation, type) and issubclass(field.annotation, pydantic.BaseModel):
      below += list(_sections(field.annotation, f"{key}."))
    elif members:  # a union told apart by its `kind`
      for member in members:
        kind = typing.get_args(member.model_fields["kind"].annotation)[0]
        below += [(f"{title} (kind: {kind})", doc, rows) for title, doc, rows in _sections(member, f"{key}.")]
    else:
      leaves.append((key, field))
  yield prefix.rstrip(".") or "top level", schema.__doc__ or "", leaves
  yield from below


def _cell(text: str) -> str:
  return " ".join(str(text).split()) or "-"


class ConfigReference(SphinxDirective):
  """``.. config-reference:: module.Schema``: the schema's keys as tables."""

  required_arguments = 1

  def run(self) -> list[nodes.Node]:
    module, _, name = self.arguments[0].rpartition(".")
    schema = getattr(importlib.import_module(module), name)
    lines = []
    for title, doc, rows in _sections(schema):
      if not rows:
        continue
      lines += [
        f".. rubric:: {title}",
        "",
        _cell(doc.strip().split("\n\n")[0]),
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 20 20 12 14 34",
        "",
        "   * - key",
        "     - type",
        "     - default",
        "     - constraint",
        "     - meaning",
      ]
      for key, field in rows:
        if not field.description:
          raise ExtensionError(f"config-reference: {key} has no docstring in {module} (every key says what it means)")
        default = "required" if field.is_required() else repr(field.get_default(call_default_factory=True))
        for i, cell in enumerate(
          [
            f"``{key}``",
            f"``{_type_name(field.annotation)}``",
            f"``{default}``",
            _constraints(field),
            field.description,
          ]
        ):
          lines.append(f"   {'* -' if i == 0 else '  -'} {_cell(cell)}")
      lines.append("")
    container = nodes.container()
    self.state.nested_parse(StringList(lines, source="config-reference"), self.content_offset, container)
    return container.children


def setup(app):
  app.add_directive("config-reference", ConfigReference)
  return {"parallel_read_safe": True, "parallel_write_safe": True}
