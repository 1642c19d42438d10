"""Files that export writes: checked before anything is computed, written whole or not at all."""

from __future__ import annotations

import os
import tempfile


def check_output_path(path: str | os.PathLike, *, force: bool = False) -> str:
  """Checks that a file can be written at ``path``: its folder exists, and it does not unless ``force``.

  Returns:
    ``path`` as a string.

  Raises:
    TypeError: ``path`` is not a path.
    IsADirectoryError: ``path`` is a folder.
    FileNotFoundError: its folder does not exist.
    FileExistsError: it exists and ``force`` is false.
  """
  if not isinstance(path, (str, os.PathLike)):
    raise TypeError(f"path must be a file path (str or os.PathLike), got {type(path).__name__}")
  path = os.fspath(path)
  folder = os.path.dirname(os.path.abspath(path))
  if os.path.isdir(path):
    raise IsADirectoryError(f"path {path!r} is a folder; expected a file name in it")
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"path {path!r}: folder {folder} does not exist; create it first")
  if os.path.exists(path) and not force:
    raise FileExistsError(f"path {path!r} already exists; choose another path or pass force=True to overwrite it")
  return path


def write_file(path: str | os.PathLike, data: bytes, *, force: bool = False) -> None:
  """Writes ``data`` to ``path`` atomically: a temporary file in the same folder, then ``os.replace``.

  Raises:
    as :func:`check_output_path`.
  """
  path = check_output_path(path, force=force)
  handle, temporary = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=f".{os.path.basename(path)}.")
  try:
    with os.fdopen(handle, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(temporary, 0o644)  # mkstemp makes it 0o600; a model is read by others
    os.replace(temporary, path)
  except BaseException:
    os.unlink(temporary)
    raise
