"""The run's metrics as TensorBoard event files beside ``metrics.jsonl``: ``tensorboard --logdir runs/``.

``metrics.jsonl`` stays the record the code reads; the event files are a copy for
viewing. Each numeric field of a record becomes the scalar ``<split>/<field>``
at the record's step (``train/loss``, ``train/learning_rate``, ``train/grad_norm``,
``train/examples_per_second``, ``test/smape``, ...). A resumed run asks
TensorBoard to drop the events its earlier attempt wrote after the checkpoint.

Example:

>>> import glob, tempfile
>>> workdir = tempfile.mkdtemp()
>>> events = EventFiles(workdir, start_step=0)
>>> events.write({"step": 10, "split": "train", "loss": 0.5, "examples_per_second": None})
>>> events.close()
>>> len(glob.glob(f"{workdir}/events.out.tfevents.*"))
1
"""

from __future__ import annotations

import math
import numbers
import sys

from training import files


def _tensorboardx():
  """tensorboardX, imported without PyTorch: it imports torch, when installed, only to accept torch tensors.

  The event files take Python floats; importing PyTorch would add about two
  seconds to the start of every training run. Where torch is already imported
  (a user's own script) it is left as it is.
  """
  if "torch" in sys.modules or "tensorboardX" in sys.modules:
    import tensorboardX  # pylint: disable=g-import-not-at-top

    return tensorboardX
  sys.modules["torch"] = None  # Python's own way to make `import torch` raise ImportError
  try:
    import tensorboardX  # pylint: disable=g-import-not-at-top
  finally:
    del sys.modules["torch"]
  return tensorboardX


class EventFiles:
  """Writes metric records as TensorBoard scalars into ``workdir``.

  Args:
    workdir: the run folder; the event files go next to ``metrics.jsonl``.
    start_step: the step the run starts (or resumes) from; events of later
      steps from an earlier attempt are purged.
  """

  def __init__(self, workdir: str, *, start_step: int):
    self._workdir = workdir
    with files.writing(workdir, "a TensorBoard event file"):
      self._writer = _tensorboardx().SummaryWriter(workdir, purge_step=start_step + 1 if start_step else None)

  def write(self, record: dict) -> None:
    """Adds the numeric, finite fields of ``record`` (``step``, ``split`` and metrics) as scalars."""
    with files.writing(self._workdir, "a TensorBoard event file"):
      for key, value in record.items():
        if (
          key in ("step", "split")
          or isinstance(value, bool)
          or not isinstance(value, numbers.Real)
          or not math.isfinite(value)
        ):
          continue
        self._writer.add_scalar(f"{record['split']}/{key}", float(value), record["step"])
      self._writer.flush()

  def close(self) -> None:
    with files.writing(self._workdir, "a TensorBoard event file"):
      self._writer.close()
