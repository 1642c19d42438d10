"""The run's metrics as JSON lines (``metrics.jsonl``): one record per log or evaluation.

A resumed run first drops the records written after its checkpoint, so the
file ends up as an uninterrupted run would have written it. A line cut short
by a kill is dropped too.

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

import json
import os


def append(path: str, record: dict) -> None:
  """Appends one record (a JSON object with at least ``"step"``) and flushes it to disk."""
  with open(path, "a", encoding="utf-8") as f:
    f.write(json.dumps(record) + "\n")
    f.flush()
    os.fsync(f.fileno())


def read(path: str) -> list[dict]:
  """All complete records; a missing file reads as none."""
  if not os.path.exists(path):
    return []
  records = []
  with open(path, encoding="utf-8") as f:
    for line in f:
      try:
        record = json.loads(line)
      except json.JSONDecodeError:
        continue  # a line cut short by a kill
      if isinstance(record, dict) and "step" in record:
        records.append(record)
  return records


def truncate_after(path: str, step: int) -> None:
  """Keeps only the records of steps ``<= step`` (rewritten atomically)."""
  if not os.path.exists(path):
    return
  kept = [r for r in read(path) if r["step"] <= step]
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    f.writelines(json.dumps(r) + "\n" for r in kept)
  os.replace(tmp, path)
