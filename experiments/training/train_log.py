"""The training log: step metrics kept on the device until a log line is due, then checked, logged and shown."""

from __future__ import annotations

import os
import time

import jax
import numpy as np
import tqdm

from training import event_files
from training import history
from training.step import StepMetrics


class NonFiniteLossError(FloatingPointError):
  """The loss or the parameters became NaN or infinite; training stopped."""


class TrainLog:
  """Step metrics kept on the device until a log line is due, then checked, logged and shown.

  Times training apart from compilation (the first step), evaluation and saving.
  """

  def __init__(self, path: str | None, schedule, batch_size: int, progress: tqdm.tqdm, start_step: int):
    self.path, self.schedule, self.batch_size, self.progress = path, schedule, batch_size, progress
    # A copy of metrics.jsonl for TensorBoard, in the same folder.
    self.events = event_files.EventFiles(os.path.dirname(path), start_step=start_step) if path else None
    self.pending: list[tuple[int, StepMetrics]] = []  # (step, its metrics still on the device)
    self.compile_seconds = self.train_seconds = 0.0
    self.first_step = start_step + 1
    self.window_step, self.window_start = start_step, time.perf_counter()

  def add(self, step: int, metrics: StepMetrics) -> None:
    self.pending.append((step, metrics))
    if step == self.first_step:  # the first step compiles: time it apart
      jax.block_until_ready(metrics)
      self.compile_seconds = time.perf_counter() - self.window_start
      self.window_step, self.window_start = step, time.perf_counter()

  def record(self, record: dict) -> None:
    """Appends ``record`` to metrics.jsonl and the TensorBoard event files (on the main process)."""
    if self.path:
      history.append(self.path, record)
      self.events.write(record)

  def close(self) -> None:
    self.progress.close()
    if self.events:
      self.events.close()

  def restart_clock(self) -> None:
    self.window_start = time.perf_counter()

  def flush(self, step: int) -> None:
    """Copies the pending metrics to the host and logs them.

    Raises:
      NonFiniteLossError: naming the first step whose loss or parameters are not finite.
    """
    host = jax.device_get([m for _, m in self.pending])
    elapsed, steps = time.perf_counter() - self.window_start, step - self.window_step
    self.train_seconds += elapsed
    for (bad, _), m in zip(self.pending, host):
      if not m.finite:
        if self.path:
          history.append(self.path, {"step": bad, "split": "train", "event": "non_finite", "loss": float(m.loss)})
        self.progress.close()
        raise NonFiniteLossError(
          f"training stopped: the loss or the parameters became non-finite at step {bad} "
          f"(loss {float(m.loss)}, gradient norm {float(m.grad_norm)})"
        )
    loss = float(np.mean([m.loss for m in host]))
    record = {
      "step": step,
      "split": "train",
      "loss": loss,
      "grad_norm": float(host[-1].grad_norm),
      "learning_rate": float(self.schedule(step - 1)),
      # None for a window holding only the compiling first step.
      "examples_per_second": steps * self.batch_size / elapsed if steps and elapsed > 0 else None,
    }
    self.record(record)
    self.progress.update(step - self.progress.n)
    self.progress.set_postfix(loss=f"{loss:.4g}", ex_per_s=f"{record['examples_per_second'] or 0:.0f}")
    self.pending = []
    self.window_step, self.window_start = step, time.perf_counter()

  def test(self, step: int, result: dict, *, echo: bool) -> None:
    self.record({"step": step, "split": "test", **result})
    if echo:
      scalars = {k: v for k, v in result.items() if isinstance(v, (int, float))}  # not by_horizon, baselines
      self.progress.write(f"step {step}: test " + ", ".join(f"{k} {v:.4g}" for k, v in scalars.items()))
