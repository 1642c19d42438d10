"""One decision, made once, known to all: how the processes of a multi-host run agree.

In a run on ``jax.distributed`` every process runs the same program, and each
must take the same branch at every collective (an orbax save or restore, a
training step), or the run hangs or crashes. Anything decided from the disk
(which files the run folder holds, which checkpoint to resume) is therefore
decided by process 0 alone, under its lock, and handed to every process by
:func:`decided_by_main`; the other processes never look at the folder before
that. Anything decided while training is derived from values all processes
hold identically (the step, replicated metrics) or agreed by :func:`any_process`
(a signal that reached one host).

With one process both are plain function calls: nothing is broadcast.

Example (one process):

>>> decided_by_main(lambda: {"resume_from": 8}, what="the run folder")
{'resume_from': 8}
>>> any_process(0), any_process(15)
(0, 15)
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

# Test-only: "<process>:<seconds>" makes that process sleep at every point where a
# process that decides from its own look at the disk would race process 0 (see tests).
DELAY_VARIABLE = "JAXGRU_TEST_PROCESS_DELAY"


class MainProcessError(RuntimeError):
  """Process 0 stopped while deciding; the other processes stop with its message."""


class LostProcessError(RuntimeError):
  """A collective failed because another process of the run stopped or was killed."""


# How the collectives report a peer that went away: gloo on CPU ("Gloo AllGather failed: ... Connection
# reset by peer"), NCCL on GPU, and the coordination service's barriers ("UNAVAILABLE", a heartbeat timeout).
_LOST_PEER = re.compile(r"Gloo .*failed|NCCL|Connection (reset|refused|closed)|UNAVAILABLE|heartbeat timeout", re.I)


def lost_process(error: BaseException, *, step: int) -> LostProcessError | None:
  """What to tell the user when ``error`` is a collective that lost a process; ``None`` otherwise.

  The collective fails on every process still alive as soon as the transport
  sees the peer gone (milliseconds for gloo's TCP), before jax.distributed's
  heartbeat timeout declares it lost. Which process went away is exact with two
  processes; with more, the message names the candidates (the transport reports
  an address, not a process).

  >>> lost_process(ValueError("shapes differ"), step=3) is None
  True
  """
  if jax.process_count() == 1 or not _LOST_PEER.search(str(error)):
    return None
  others = [i for i in range(jax.process_count()) if i != jax.process_index()]
  who = f"process {others[0]}" if len(others) == 1 else f"another process (one of {', '.join(map(str, others))})"
  first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
  return LostProcessError(
    f"process {jax.process_index()} lost contact with {who} at step {step} ({first_line}): it stopped or was "
    "killed, so this process stops too"
  )


def pause_if_testing() -> None:
  """Sleeps where :data:`DELAY_VARIABLE` asks this process to (tests make the timing hostile with it)."""
  value = os.environ.get(DELAY_VARIABLE)
  if not value:
    return
  process, _, seconds = value.partition(":")
  if int(process) == jax.process_index():
    time.sleep(float(seconds))


def _broadcast_bytes(data: bytes) -> bytes:
  """Process 0's ``data`` on every process (the others' argument is ignored)."""
  size = int(multihost_utils.broadcast_one_to_all(np.int32(len(data))))
  # int32 words: the collectives of every backend (gloo on CPU, NCCL) reduce them.
  padded = np.zeros(-(-size // 4) * 4, np.uint8)
  if jax.process_index() == 0:
    padded[:size] = np.frombuffer(data, np.uint8)
  words = multihost_utils.broadcast_one_to_all(padded.view(np.int32))
  return np.asarray(words, np.int32).view(np.uint8)[:size].tobytes()


def decided_by_main(decide: Callable[[], Any], *, what: str) -> Any:
  """Runs ``decide()`` on process 0 only and returns its result on every process.

  Args:
    decide: makes the decision (it may read and write the disk); returns a
      JSON value. Called on process 0 alone.
    what: what is decided, for the other processes' error message.

  Returns:
    What ``decide()`` returned on process 0.

  Raises:
    Whatever ``decide()`` raised, on process 0; :class:`MainProcessError` with
    its message on the others, which stop instead of waiting for a collective
    that process 0 never reaches.
  """
  if jax.process_count() == 1:
    return decide()
  pause_if_testing()
  if jax.process_index() == 0:
    try:
      answer = {"value": decide()}
    except BaseException as e:
      _broadcast_bytes(json.dumps({"error": f"{type(e).__name__}: {e}"}).encode())
      raise
    _broadcast_bytes(json.dumps(answer).encode())
    pause_if_testing()
    return answer["value"]
  answer = json.loads(_broadcast_bytes(b""))
  pause_if_testing()
  if "error" in answer:
    raise MainProcessError(f"process 0 stopped while deciding {what}: {answer['error']}")
  return answer["value"]


def any_process(signum: int) -> int:
  """The signal number that reached any process (the highest), or 0 when none did; on every process.

  Called by all processes at the same step, so that a signal that reached one
  host stops all of them there.
  """
  if jax.process_count() == 1:
    return signum
  return int(np.max(multihost_utils.process_allgather(np.int32(signum))))
