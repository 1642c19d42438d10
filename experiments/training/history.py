"""The run's metrics as JSON lines (``metrics.jsonl``): one record per log or evaluation.

A resumed run first drops the records written after its checkpoint, so the
file ends up as an uninterrupted run would have written it. A line cut short
by a kill is dropped too. A line that is not a valid record (no integer
``step``, no ``split``, not JSON, not UTF-8) is skipped with a warning naming
the file and the line number, and kept in the file as it is.

Example:

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "metrics.jsonl")
>>> for step in (10, 20, 30):
...   append(path, {"step": step, "split": "train", "loss": 1.0 / step})
>>> truncate_after(path, 20)
>>> [r["step"] for r in read(path)]
[10, 20]
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings

from training import files


def append(path: str, record: dict) -> None:
  """Appends one record (a JSON object with at least ``"step"``) and flushes it to disk.

  The lines already there are never touched: a write the disk refuses half-way
  is cut back off (and a line a kill cuts short is dropped by the next resume).

  Raises:
    training.files.DiskFault: the disk is full or the file may not be written.
  """
  line = (json.dumps(record) + "\n").encode("utf-8")
  with files.writing(os.path.dirname(os.path.abspath(path)), os.path.basename(path)):
    with open(path, "ab") as f:
      size = f.tell()
      try:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())
      except OSError:
        with contextlib.suppress(OSError):  # no half line stays to be glued to the next one
          f.truncate(size)
        raise


class HistoryWarning(UserWarning):
  """A line of ``metrics.jsonl`` is not a valid record and is skipped (the file is left as it is)."""


def _problem(raw: bytes) -> tuple[dict | None, str | None]:
  """``(record, None)`` for a valid line, else ``(None, why not)``."""
  try:
    record = json.loads(raw.decode("utf-8"))
  except UnicodeDecodeError as e:
    return None, f"not UTF-8 ({e.reason} at byte {e.start})"
  except json.JSONDecodeError as e:
    return None, f"not valid JSON ({e.msg})"
  if not isinstance(record, dict):
    return None, "not a JSON object"
  step = record.get("step")
  if not isinstance(step, int) or isinstance(step, bool) or step < 0:
    return None, f"'step' is not a non-negative integer (got {step!r})"
  if not isinstance(record.get("split"), str):
    return None, f"'split' is missing or not a string (got {record.get('split')!r})"
  return record, None


def _lines(path: str) -> list[tuple[bytes, dict | None]]:
  """Every line (with its newline) and its record, ``None`` where it is not valid; warns for those.

  The last line without a newline is a write cut short by a kill: it is left
  out silently.
  """
  if not os.path.exists(path):
    return []
  with open(path, "rb") as f:
    lines = f.read().splitlines(keepends=True)
  if lines and not lines[-1].endswith(b"\n"):
    lines.pop()
  parsed = []
  for number, raw in enumerate(lines, start=1):
    if not raw.strip():  # an empty line: nothing to read, nothing to warn about
      parsed.append((raw, None))
      continue
    record, problem = _problem(raw)
    if problem:
      warnings.warn(f"{path}, line {number}: {problem}; the line is skipped", HistoryWarning, stacklevel=3)
    parsed.append((raw, record))
  return parsed


def read(path: str) -> list[dict]:
  """All valid records; invalid lines are skipped with a :class:`HistoryWarning`, a missing file reads as none."""
  return [record for _, record in _lines(path) if record is not None]


def truncate_after(path: str, step: int) -> None:
  """Drops the records of steps ``> step`` and a last line cut short by a kill.

  The lines that stay are kept byte for byte (invalid ones included: they are
  the user's to inspect); the file is replaced atomically, and only when
  something is dropped.
  """
  if not os.path.exists(path):
    return
  lines = _lines(path)
  kept = [raw for raw, record in lines if record is None or record["step"] <= step]
  if len(kept) == len(lines) and sum(map(len, kept)) == os.path.getsize(path):
    return
  with files.atomic_write(path, "wb") as f:
    f.writelines(kept)
