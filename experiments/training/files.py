"""Writing the applications' files: whole or not at all, and one line when the disk refuses.

* :func:`atomic_write` writes ``NAME`` through ``NAME.<random>.incomplete`` in the
  same folder, flushed to disk and then renamed onto ``NAME``: a kill, a full disk
  or a reader never meets a half file under the final name. What an interrupted
  write leaves ends in ``.incomplete``, and the next complete write of ``NAME``
  removes it.
* :func:`staged` does the same for functions that write several files by path
  (``np.savez``, matplotlib's ``savefig``): they write into a fresh
  ``*.incomplete`` folder, and each finished file is renamed into place.
* :class:`DiskFault` is what a full disk or a refused write (``ENOSPC``,
  ``EDQUOT``, ``EACCES``, ``EPERM``, ``EROFS``) becomes inside :func:`writing`:
  one line naming the folder, what was being written, the free space and what to do.

Needs no JAX: the command-line tools check their input with it before JAX loads.

Example:

>>> import os, tempfile
>>> folder = tempfile.mkdtemp()
>>> with atomic_write(os.path.join(folder, "summary.json")) as f:
...   _ = f.write('{"steps": 4}')
>>> os.listdir(folder)
['summary.json']
>>> print(DiskFault(28, folder="/runs/x", what="checkpoint 12", free=0, then="rerun the same command"))
no space left on device while writing checkpoint 12 in /runs/x (0 B free); free space in /runs/x and rerun the same command
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import IO

INCOMPLETE = ".incomplete"  # the suffix of what an interrupted write leaves
# The errors that mean "the disk refuses", not "the program is wrong", and how a user reads them.
FAULTS = {
  errno.ENOSPC: "no space left on device",
  errno.EDQUOT: "disk quota exceeded",
  errno.EACCES: "permission denied",
  errno.EPERM: "operation not permitted (an immutable file?)",
  errno.EROFS: "read-only file system",
}
# Writers that wrap the operating system's error in their own (orbax's TensorStore) keep its text.
_FAULT_TEXT = {
  "No space left on device": errno.ENOSPC,
  "RESOURCE_EXHAUSTED": errno.ENOSPC,
  "Disk quota exceeded": errno.EDQUOT,
  "Read-only file system": errno.EROFS,
  "Permission denied": errno.EACCES,
  "PERMISSION_DENIED": errno.EACCES,
  "Operation not permitted": errno.EPERM,
}
_SPACE = (errno.ENOSPC, errno.EDQUOT)


def fault_errno(error: BaseException | None) -> int | None:
  """The errno of :data:`FAULTS` behind ``error`` (its causes and their messages included), else ``None``."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, DiskFault) or (isinstance(error, OSError) and error.errno in FAULTS):
      return error.errno
    text = str(error)
    for fragment, number in _FAULT_TEXT.items():
      if fragment in text:
        return number
    error = error.__cause__ or error.__context__
  return None


def free_bytes(folder: str) -> int | None:
  """Free space on the file system of ``folder`` (or of its nearest existing parent), if known."""
  path = os.path.abspath(folder)
  while not os.path.exists(path) and os.path.dirname(path) != path:
    path = os.path.dirname(path)
  try:
    return shutil.disk_usage(path).free
  except OSError:
    return None


def format_bytes(count: int) -> str:
  """``1536`` -> ``'1.5 kB'``."""
  value = float(count)
  for unit in ("B", "kB", "MB", "GB", "TB"):
    if value < 1000 or unit == "TB":
      return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
    value /= 1000
  raise AssertionError("unreachable")


class DiskFault(Exception):
  """A write refused by the disk, as one line: what, where, the free space, and what to do.

  Args:
    number: the errno, a key of :data:`FAULTS`.
    folder: the folder being written.
    what: what was being written (``"checkpoint 12"``, ``"forecast.csv"``).
    free: free bytes there (``None``: measured now, if possible).
    then: what to do once space or permission is back (``"rerun the same command"``).
  """

  def __init__(
    self, number: int, *, folder: str, what: str, free: int | None = None, then: str = "rerun the same command"
  ):
    self.errno, self.folder, self.what, self.then = number, folder, what, then
    self.free = free_bytes(folder) if free is None else free
    super().__init__(self._message())

  def _message(self) -> str:
    reason = FAULTS.get(self.errno, os.strerror(self.errno))
    if self.errno in _SPACE:
      free = f" ({format_bytes(self.free)} free)" if self.free is not None else ""
      return f"{reason} while writing {self.what} in {self.folder}{free}; free space in {self.folder} and {self.then}"
    return (
      f"{reason} while writing {self.what} in {self.folder}; make it writable (chmod -R u+w; chattr -R -i "
      f"for immutable files; remount a read-only file system) and {self.then}"
    )

  def with_advice(self, then: str) -> DiskFault:
    """The same fault with another ``then``."""
    return DiskFault(self.errno, folder=self.folder, what=self.what, free=self.free, then=then)


@contextlib.contextmanager
def writing(folder: str, what: str) -> Iterator[None]:
  """Turns a full disk or a refused write in the block into a :class:`DiskFault`; other errors pass."""
  try:
    yield
  except DiskFault:
    raise
  except Exception as e:  # pylint: disable=broad-except  # only the disk's refusals are translated
    number = fault_errno(e)
    if number is None:
      raise
    raise DiskFault(number, folder=os.path.abspath(folder), what=what) from e


def leftovers(path: str) -> list[str]:
  """What interrupted writes of ``path`` left behind (``path.<random>.incomplete``)."""
  folder, name = os.path.split(os.path.abspath(path))
  return sorted(glob.glob(os.path.join(glob.escape(folder), glob.escape(name) + ".*" + INCOMPLETE)))


def _fsync_folder(folder: str) -> None:
  """Makes a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
  with contextlib.suppress(OSError):
    fd = os.open(folder, os.O_RDONLY)
    try:
      os.fsync(fd)
    finally:
      os.close(fd)


def _default_mode() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return 0o666 & ~mask


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "w", **open_kwargs) -> Iterator[IO]:
  """Opens a temporary file beside ``path``; when the block ends without error it replaces ``path``.

  Text modes default to UTF-8. If the block raises, the temporary file is
  removed and ``path`` is left as it was.

  Raises:
    DiskFault: the disk is full or the folder or file may not be written.
  """
  if "w" not in mode:
    raise ValueError(f"mode must be a write mode ('w' or 'wb'), got {mode!r}")
  if "b" not in mode:
    open_kwargs.setdefault("encoding", "utf-8")
  folder, name = os.path.split(os.path.abspath(path))
  with writing(folder, name):
    fd, tmp = tempfile.mkstemp(prefix=name + ".", suffix=INCOMPLETE, dir=folder)
    try:
      os.fchmod(fd, _default_mode())  # mkstemp's 0600 would hide results from the user's group
      with os.fdopen(fd, mode, **open_kwargs) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())  # the data is on disk before the name points at it
      os.replace(tmp, path)
    except BaseException:
      with contextlib.suppress(OSError):
        os.remove(tmp)
      raise
    _fsync_folder(folder)
  for stale in leftovers(path):  # from writes that a kill cut short
    with contextlib.suppress(OSError):
      os.remove(stale)


@contextlib.contextmanager
def staged(folder: str, what: str) -> Iterator[str]:
  """A fresh folder inside ``folder`` to write files into by path; each is renamed into ``folder`` at the end.

  Every file is whole or absent under its final name; if the block raises,
  nothing is moved and the staging folder is removed.

  Raises:
    DiskFault: the disk is full or ``folder`` may not be written (``what`` says what was written).
  """
  folder = os.path.abspath(folder)
  with writing(folder, what):
    stage = tempfile.mkdtemp(prefix="staged.", suffix=INCOMPLETE, dir=folder)
    try:
      yield stage
      for name in sorted(os.listdir(stage)):
        source = os.path.join(stage, name)
        with open(source, "rb+") as f:
          os.fsync(f.fileno())
        os.replace(source, os.path.join(folder, name))
      _fsync_folder(folder)
    finally:
      shutil.rmtree(stage, ignore_errors=True)
  for stale in glob.glob(os.path.join(glob.escape(folder), "staged.*" + INCOMPLETE)):  # left by a kill
    shutil.rmtree(stale, ignore_errors=True)


def check_writable(folder: str, names: tuple[str, ...] = ()) -> None:
  """Checks that ``folder`` takes new files and that its existing ``names`` may be rewritten.

  A folder that does not exist yet is checked at its nearest existing parent.
  Opening a file for writing without changing it is how a read-only or
  immutable file is told from a writable one, whoever runs the check (root included).

  Raises:
    DiskFault: naming the first folder or file that refuses.
  """
  folder = os.path.abspath(folder)
  target = folder
  while not os.path.isdir(target) and os.path.dirname(target) != target:
    target = os.path.dirname(target)
  with writing(target, "a test file"):
    fd, probe = tempfile.mkstemp(prefix="write_check.", suffix=INCOMPLETE, dir=target)
    os.close(fd)
    os.remove(probe)
  for name in names:
    path = os.path.join(folder, name)
    if os.path.isfile(path):
      with writing(folder, name):
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
