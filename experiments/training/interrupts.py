"""Ctrl-C and SIGTERM as one exception, held back while a checkpoint is being written.

Inside :func:`signals_raise`, SIGINT and SIGTERM raise :class:`Interrupted`
instead of Python's ``KeyboardInterrupt`` (or a silent exit). Inside
:func:`deferred`, for instance around an orbax save, a signal is remembered and
raised when the block ends, so no write is cut short by Python itself (a
``kill -9`` still can be: orbax's temporary folders cover that).

Example:

>>> import os, signal
>>> with signals_raise():
...   try:
...     with deferred():
...       os.kill(os.getpid(), signal.SIGTERM)
...       print("the save finishes")
...   except Interrupted as e:
...     print(e.exit_status)
the save finishes
143
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
  """SIGINT or SIGTERM arrived; ``exit_status`` is the shell's 128 + signal number."""

  def __init__(self, signum: int, message: str = ""):
    super().__init__(message or f"interrupted by {signal.Signals(signum).name}")
    self.signum = signum
    self.exit_status = 128 + signum


class _State(threading.local):
  depth = 0  # nesting of deferred() blocks
  hold = False  # signals_raise(hold=True): every signal waits for take_pending()
  pending: int | None = None  # a signal that arrived inside one


_state = _State()


def _handler(signum, frame):
  del frame
  if _state.depth or _state.hold:
    _state.pending = signum
  else:
    raise Interrupted(signum)


@contextlib.contextmanager
def signals_raise(*, hold: bool = False) -> Iterator[None]:
  """SIGINT and SIGTERM raise :class:`Interrupted` in the block (a no-op off the main thread).

  Args:
    hold: raise nothing: a signal waits until :func:`take_pending` collects it
      (a multi-host run, whose processes must all stop at the same step).
  """
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  previous = {s: signal.signal(s, _handler) for s in _SIGNALS}
  _state.hold = hold
  try:
    yield
  finally:
    _state.hold = False
    for s, handler in previous.items():
      signal.signal(s, handler)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
  """Holds SIGINT and SIGTERM back until the block ends, then raises :class:`Interrupted`."""
  _state.depth += 1
  try:
    yield
  finally:
    _state.depth -= 1
  if not _state.depth and not _state.hold and _state.pending is not None:
    signum, _state.pending = _state.pending, None
    raise Interrupted(signum)


def take_pending() -> int:
  """The signal held back inside :func:`deferred` so far (0: none), which is then forgotten.

  A multi-host run holds signals back (``signals_raise(hold=True)``) and acts on
  them only at steps where every process asks (``training.agreement.any_process``).
  """
  signum, _state.pending = _state.pending, None
  return signum or 0
