"""Multi-host runs (jax.distributed over 2 CPU processes): the processes agree whatever the timing.

Each run is two ``experiments/train.py`` processes on one machine. The
hostile cases slow one process down at every point where a process that
looked at the run folder on its own would race process 0
(``training.agreement.DELAY_VARIABLE``); each must still give the losses of
one process with two devices.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from training import agreement
from training import history

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "experiments", "train.py")
CONFIG = (
  "task: {kind: adding, length: 10, test_size: 32}\n"
  "model: {hidden: 16, num_layers: 2, dropout: 0.2}\n"
  "train: {batch_size: 16, num_steps: 8, log_every: 1, eval_every: 4, checkpoint_every: 4, progress_bar: false}\n"
)
# The coordinator could not take the free port found below: another process took it first.
PORT_TAKEN = re.compile(r"address already in use|failed to add port|bind", re.I)


def train_losses(workdir):
  return [r["loss"] for r in history.read(os.path.join(workdir, "metrics.jsonl")) if r["split"] == "train"]


def summary_of(workdir):
  with open(os.path.join(workdir, "summary.json")) as f:
    return json.load(f)


def free_port():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


# Process 1 of a run signals itself at its n-th log step (where the processes agree on signals), as
# a scheduler's SIGTERM or a crash would: the moment is exact, whatever the machine's load.
_SIGNALLED_RUN = """
import os, runpy, signal, sys
from training import interrupts
take, calls = interrupts.take_pending, []
def take_after_signal():
  calls.append(1)
  if len(calls) == {at}:
    os.kill(os.getpid(), signal.{signal})
  return take()
interrupts.take_pending = take_after_signal
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path({script!r}, run_name="__main__")
"""


def start_two_hosts(config_path, workdir, env, *extra, signal_process_1=None):
  """Both processes of one run; ``signal_process_1``: (signal name, log step of this run) sent to process 1."""
  port = free_port()
  processes = []
  for i in range(2):
    program = [SCRIPT]
    if i == 1 and signal_process_1:
      name, at = signal_process_1
      program = ["-c", _SIGNALLED_RUN.format(at=at, signal=name, script=SCRIPT)]
    processes.append(
      subprocess.Popen(
        [
          sys.executable,
          *program,
          "--config",
          str(config_path),
          "--workdir",
          str(workdir),
          "--distributed",
          "--coordinator",
          f"localhost:{port}",
          "--num-processes",
          "2",
          "--process-id",
          str(i),
          "--heartbeat-timeout",
          "5",
          *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
      )
    )
  return processes


def run_two_hosts(config_path, workdir, env, *extra, slow=None, signal_process_1=None, expect=(0, 0)):
  """Both processes of one run to their end (``slow``: the process delayed at each folder decision).

  Returns each process's stderr; their exit statuses must be ``expect``.
  """
  if slow is not None:
    env = {**env, agreement.DELAY_VARIABLE: f"{slow}:0.25"}
  backup = str(workdir) + ".before"
  if os.path.exists(workdir):
    shutil.copytree(workdir, backup)
  for attempt in range(2):
    hosts = start_two_hosts(config_path, workdir, env, *extra, signal_process_1=signal_process_1)
    results = [proc.communicate(timeout=120)[1:] + (proc.returncode,) for proc in hosts]
    if attempt or not any(code and PORT_TAKEN.search(err) for err, code in results):
      break
    shutil.rmtree(workdir, ignore_errors=True)  # the free-port probe is racy: once more on another port
    if os.path.exists(backup):
      shutil.copytree(backup, workdir)
  shutil.rmtree(backup, ignore_errors=True)
  assert tuple(code for _, code in results) == expect, "\n".join(err[-3000:] for err, _ in results)
  return [err for err, _ in results]


def last_line(err):
  return err.strip().splitlines()[-1]


@pytest.fixture
def two_hosts(tmp_path, subprocess_env):
  """The config and the environment of both processes."""
  config_path = tmp_path / "c.yaml"
  config_path.write_text(CONFIG)
  return config_path, {**subprocess_env, "JAX_CPU_COLLECTIVES_IMPLEMENTATION": "gloo"}


def one_process_losses(config_path, env, workdir):
  """The losses of one process with two devices."""
  single = subprocess.run(
    [sys.executable, SCRIPT, "--config", str(config_path), "--workdir", str(workdir)],
    env={**env, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert single.returncode == 0, single.stderr[-3000:]
  losses = train_losses(str(workdir))
  assert len(losses) == 8
  return losses


@pytest.mark.slow
def test_two_processes_agree_through_a_signal_a_lost_process_a_damaged_checkpoint_and_a_restart(two_hosts, tmp_path):
  config_path, env = two_hosts
  single_losses = one_process_losses(config_path, env, tmp_path / "single")
  workdir = tmp_path / "multi"

  def check(resumed_from):
    np.testing.assert_allclose(train_losses(str(workdir)), single_losses, rtol=1e-5)
    summary = summary_of(workdir)
    assert summary["devices"] == 2 and summary["resumed_from_step"] == resumed_from

  # A fresh folder, process 1 late at each decision; a scheduler's SIGTERM reaches process 1 alone at
  # step 2: both stop there, with one checkpoint of step 2 that the next run resumes.
  errs = run_two_hosts(config_path, workdir, env, slow=1, signal_process_1=("SIGTERM", 2), expect=(143, 143))
  for err in errs:
    assert last_line(err) == "interrupted at step 2; last checkpoint at step 2; rerun the same command to resume", err[
      -2000:
    ]
  # The resume (process 0 late); process 1 is killed at step 6: process 0 stops at once with one line
  # that names it, without waiting for the heartbeat timeout or aborting.
  err0, _ = run_two_hosts(
    config_path, workdir, env, slow=0, signal_process_1=("SIGKILL", 4), expect=(1, -signal.SIGKILL)
  )
  assert re.fullmatch(
    r"error: process 0 lost contact with process 1 at step 6 \(.*\): it stopped or was killed, so this process stops "
    r"too; last checkpoint at step 4; rerun the same command on every host to resume",
    last_line(err0),
  ), err0[-2000:]
  # The latest checkpoint (4) damaged as well: process 0 sets it aside and both resume from step 2; the
  # losses of the three runs are those of one uninterrupted run.
  shutil.rmtree(workdir / "checkpoints" / "4" / "default")
  run_two_hosts(config_path, workdir, env, slow=1)
  check(2)
  assert os.listdir(workdir / "unreadable_checkpoints") == ["4"]
  # --restart: the old contents move aside while process 1 is late.
  run_two_hosts(config_path, workdir, env, "--restart", slow=1)
  check(0)
  assert len(os.listdir(workdir / "previous_runs")) == 1


@pytest.mark.slow
def test_a_refusal_on_process_0_stops_both_processes_with_its_reason(two_hosts, tmp_path):
  config_path, env = two_hosts
  workdir = tmp_path / "multi"
  os.makedirs(workdir / "checkpoints" / "4")  # history (a step folder) but nothing readable to resume
  hosts = start_two_hosts(config_path, workdir, env)
  (_, err0), (_, err1) = (proc.communicate(timeout=120) for proc in hosts)
  assert [proc.returncode for proc in hosts] == [1, 1], err0[-2000:] + err1[-2000:]
  assert "no readable checkpoint" in err0.strip().splitlines()[-1]
  assert "error: process 0 stopped while deciding how to open" in err1.strip().splitlines()[-1]


@pytest.mark.parametrize(
  ("count", "index", "who"),
  [(2, 0, "process 1"), (2, 1, "process 0"), (4, 2, "another process (one of 0, 1, 3)")],
)
def test_a_lost_process_is_named_from_the_failed_collective(monkeypatch, count, index, who):
  monkeypatch.setattr(agreement.jax, "process_count", lambda: count)
  monkeypatch.setattr(agreement.jax, "process_index", lambda: index)
  gloo = ValueError(
    "UNKNOWN: Gloo AllGather failed: [pair.cc:538] Read error [127.0.0.1]:43156: Connection reset by peer\nmore"
  )
  lost = agreement.lost_process(gloo, step=6)
  assert str(lost) == (
    f"process {index} lost contact with {who} at step 6 (UNKNOWN: Gloo AllGather failed: [pair.cc:538] Read error "
    "[127.0.0.1]:43156: Connection reset by peer): it stopped or was killed, so this process stops too"
  )
  assert agreement.lost_process(ValueError("shapes (3,) and (4,) differ"), step=6) is None  # a bug stays a bug
