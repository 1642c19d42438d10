"""Where a run's files go: a new folder of its own, never over files someone already has.

A benchmark run writes into ``runs/bench/<config>-<UTC time>/`` by default, or
into a folder the user names, which must be new or empty. The committed results
(``experiments/results/...``) are replaced only when the user asks for it.
"""

from __future__ import annotations

import datetime
import os


class OutputError(ValueError):
  """The folder asked for holds files already, or is not a folder."""


def timestamped_dir(parent: str | os.PathLike, name: str, now: datetime.datetime | None = None) -> str:
  """A path ``parent/<name>-<YYYYmmdd-HHMMSS>`` (UTC) that does not exist yet (``-2``, ``-3``, ... on a clash).

  >>> import tempfile
  >>> parent = tempfile.mkdtemp()
  >>> when = datetime.datetime(2026, 11, 30, 12, 0, 5, tzinfo=datetime.timezone.utc)
  >>> first = timestamped_dir(parent, "cpu", when); os.makedirs(first)
  >>> os.path.basename(first), os.path.basename(timestamped_dir(parent, "cpu", when))
  ('cpu-20261130-120005', 'cpu-20261130-120005-2')
  """
  now = now or datetime.datetime.now(datetime.timezone.utc)
  base = os.path.join(os.fspath(parent), f"{name}-{now.strftime('%Y%m%d-%H%M%S')}")
  path, n = base, 1
  while os.path.exists(path):
    n += 1
    path = f"{base}-{n}"
  return path


def claim_empty_dir(path: str | os.PathLike) -> str:
  """Creates ``path`` (and its parents) or accepts it when it is an empty folder; returns it.

  Raises:
    OutputError: ``path`` is a file, or a folder that holds anything (nothing is written).
  """
  path = os.fspath(path)
  if os.path.exists(path):
    if not os.path.isdir(path):
      raise OutputError(f"{path} is a file, not a folder; give a new or empty folder")
    held = sorted(os.listdir(path))
    if held:
      shown = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
      raise OutputError(f"{path} already holds files ({shown}); give a new or empty folder, nothing is overwritten")
  os.makedirs(path, exist_ok=True)
  return path
