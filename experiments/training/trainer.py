"""The training loop: state, one jitted step, evaluation, checkpoints, logs and plots.

``train_and_evaluate(config, workdir)`` runs a whole config and resumes by
itself from the latest checkpoint in ``workdir``. Training is data parallel
over all devices: a 1-D mesh ``("data",)``, the batch split along it, the
parameters and optimizer state replicated; with one device this is plain
single-device training.

Run folder::

  run.lock             held by the one process using the folder (pid, host, start time)
  config.yaml          the resolved config (a rerun must match it)
  identity.json        the config that defines the run, also stored in every checkpoint
  checkpoints/<step>/  orbax checkpoints: the latest N and the best
  metrics.jsonl        one JSON record per log line and per evaluation
  events.out.tfevents.*   the same metrics for TensorBoard (tensorboard --logdir runs/)
  loss.png             training and test loss curves
  forecast.png | result.png, test_predictions.npz   the task's result
  scaling.json         energy, dayahead: the scalers fitted on the training data (for experiments/predict.py)
  summary.json         final metrics, parameter count, timings
  unreadable_checkpoints/<step>/   step folders that could not be read, set aside
  previous_runs/<time>/            the old contents, moved there by --restart
  *.incomplete         what a write cut short by a kill leaves (every file is renamed into place
                       when complete; see training.files); removed by the next complete write

Example:

>>> import tempfile
>>> from training.config_files import validate
>>> from training.schema import TrainConfig
>>> config = validate(TrainConfig, {
...     "task": {"kind": "adding", "length": 6, "test_size": 16},
...     "model": {"hidden": 8, "num_layers": 1},
...     "train": {"batch_size": 8, "num_steps": 4, "progress_bar": False}}, "example")
>>> summary = train_and_evaluate(config, tempfile.mkdtemp())
>>> summary["steps"], sorted(summary["test"])
(4, ['constant_prediction_mse', 'loss', 'mse'])
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm

from training import agreement
from training import checkpoint
from training import files
from training import history
from training import interrupts
from training import models
from training import opening
from training import optim
from training import plots
from training import run_folder
from training import schema
from training import step as step_lib
from training import tasks
from training import train_log
from training.config_files import ConfigError

Array = jax.Array


def _schedule(every: int | None, steps_per_epoch: int | None, total: int) -> int:
  if every is not None:
    return every
  return steps_per_epoch if steps_per_epoch is not None else max(1, total // 10)


class Plan(NamedTuple):
  """What a config trains and when, checked before the run folder is touched."""

  task: tasks.Task  # the data, loss and metrics
  model: models.SequenceModel
  tx: optax.GradientTransformation  # the optimizer, with its schedule
  schedule: optax.Schedule  # the learning rate per step, for the logs
  total_steps: int
  eval_every: int  # steps between evaluations (each is also saved)
  checkpoint_every: int  # steps between checkpoints
  first_checkpoint: int  # the step of the run's first checkpoint


def plan_run(config: schema.TrainConfig, task: tasks.Task | None = None) -> Plan:
  """Builds the task (unless given), model and optimizer of ``config`` and checks that they fit together.

  Raises:
    ConfigError: a batch that does not split over the devices, epochs for a
      task without a fixed training set, a warmup not shorter than the run, a
      model that cannot be initialized on the task's inputs.
    training.energy.DataError: missing or malformed data files.
  """
  train = config.train
  num_devices = jax.device_count()
  if train.batch_size % num_devices:
    raise ConfigError(f"train.batch_size ({train.batch_size}) must be a multiple of the device count ({num_devices})")
  if task is None:
    task = tasks.build_task(config.task, seed=config.seed, batch_size=train.batch_size, highway=config.model.highway)
  if task.steps_per_epoch is None and train.num_epochs is not None:
    raise ConfigError(f"task {task.name!r} has no fixed training set: set train.num_steps instead of train.num_epochs")
  total = train.num_epochs * task.steps_per_epoch if train.num_epochs is not None else train.num_steps
  eval_every = _schedule(train.eval_every, task.steps_per_epoch, total)
  checkpoint_every = _schedule(train.checkpoint_every, task.steps_per_epoch, total)
  model, tx = (
    step_lib.create_model(config.model, task.outputs, task.forecast),
    optim.make_optimizer(config.optimizer, total),
  )
  sample_inputs, _ = task.train_batch(0)
  try:  # shapes only, nothing computed: a model that does not fit the inputs is refused before any file is written
    jax.eval_shape(
      functools.partial(step_lib.create_train_state, model, tx), jax.random.key(0), jnp.asarray(sample_inputs[:1])
    )
  except (ValueError, TypeError) as e:
    raise ConfigError(
      f"the model section does not fit the task's inputs [T, I] = {list(sample_inputs.shape[1:])}: {e}"
    ) from None
  return Plan(
    task=task,
    model=model,
    tx=tx,
    schedule=optim.make_schedule(config.optimizer, total),
    total_steps=total,
    eval_every=eval_every,
    checkpoint_every=checkpoint_every,
    first_checkpoint=min(checkpoint_every, eval_every, total),
  )


@dataclasses.dataclass
class _Position:
  step: int = 0  # the last step trained (or restored)


def train_and_evaluate(
  config: schema.TrainConfig, workdir: str, *, restart: bool = False, task: tasks.Task | None = None
) -> dict:
  """Trains and evaluates ``config``, resuming from the latest checkpoint in ``workdir``.

  Three stages: :func:`training.opening.open_run_folder` (checks, lock, resume or finished),
  the training loop, and the summary. The run folder is locked throughout
  (:func:`training.run_folder.exclusive`). A finished run is left as it is: its
  summary is read back.

  Args:
    config: a validated :class:`~training.schema.TrainConfig`.
    workdir: the run folder (created if missing).
    restart: first move the folder's contents to ``previous_runs/<time>/``
      and train from step 0.
    task: ``config.task`` already built (``experiments/train.py`` builds it
      before loading JAX, to check the data early); built here when ``None``.

  Returns:
    The summary written to ``workdir/summary.json``.

  Raises:
    ConfigError: a config that does not fit the devices or the task, before
      anything is written; ``workdir`` holds a run of another config.
    training.energy.DataError: bad data, before anything is written.
    training.run_folder.RunFolderBusyError: another process is using ``workdir``.
    training.files.DiskFault: the disk is full or ``workdir`` may not be written;
      its message says what to free or fix and from which checkpoint a rerun resumes.
    NonFiniteLossError: the loss became NaN or infinite; the last good checkpoint is kept.
    training.checkpoint.CheckpointError: ``workdir`` holds earlier work but no readable checkpoint.
    training.interrupts.Interrupted: SIGINT or SIGTERM; its message names the step and the last checkpoint.
    training.agreement.LostProcessError: another process of a multi-host run stopped or was killed; its
      message names it, the step and the last checkpoint.
  """
  position = _Position()
  ckpt_dir = os.path.join(workdir, "checkpoints")
  with contextlib.ExitStack() as guards, interrupts.signals_raise(hold=jax.process_count() > 1):
    try:
      plan = plan_run(config, task)
      opened = opening.open_run_folder(
        config,
        workdir,
        total_steps=plan.total_steps,
        first_checkpoint=plan.first_checkpoint,
        restart=restart,
        guards=guards,
      )
      if isinstance(opened, dict):  # a finished run
        return opened
      outcome = _train(config, plan, opened, workdir, position)
      return _summarize(config, plan, workdir, outcome)
    except interrupts.Interrupted as e:
      last = opening.last_checkpoint(ckpt_dir)
      raise interrupts.Interrupted(
        e.signum, f"interrupted at step {position.step}; {last}; rerun the same command to resume"
      ) from None
    except Exception as e:  # pylint: disable=broad-except  # only the disk's refusals and lost processes are translated
      lost = agreement.lost_process(e, step=position.step)
      if lost is not None:
        last = opening.last_checkpoint(ckpt_dir)
        raise agreement.LostProcessError(f"{lost}; {last}; rerun the same command on every host to resume") from None
      number = files.fault_errno(e)
      if number is None:
        raise
      fault = (
        e
        if isinstance(e, files.DiskFault)
        else files.DiskFault(number, folder=os.path.abspath(workdir), what="the run's files")
      )
      saved = opening.readable_steps(ckpt_dir)
      then = (
        f"rerun the same command to resume from checkpoint {saved[-1]}"
        if saved
        else "rerun the same command (there is no checkpoint yet: the run starts from step 0)"
      )
      raise fault.with_advice(then) from None


class _Outcome(NamedTuple):
  """What the training loop hands to the summary."""

  state: step_lib.TrainState  # after the last step
  start_step: int  # the step it resumed from (0: a fresh start)
  num_params: int
  compile_seconds: float  # the first step
  train_seconds: float  # the steps, without compilation, evaluation and saving
  test: dict  # metrics of the last step's evaluation
  predictions: np.ndarray  # [N_test, outputs] of the last step's evaluation
  best: tuple[int, float] | None  # (step, test loss) of the best checkpoint kept


def _train(
  config: schema.TrainConfig, plan: Plan, ckpt: checkpoint.Checkpoints, workdir: str, position: _Position
) -> _Outcome:
  """The training loop: restores the latest checkpoint, trains up to ``plan.total_steps``, evaluates and saves."""
  train_cfg, task, total_steps = config.train, plan.task, plan.total_steps
  is_main = jax.process_index() == 0
  num_devices = jax.device_count()
  metrics_path = os.path.join(workdir, "metrics.jsonl")
  mesh = step_lib.make_mesh()
  # Made inside jit to be replicated on every device of every process (device_put
  # cannot place arrays on other hosts' devices).
  init_key, dropout_key = jax.jit(
    lambda: tuple(jax.random.split(jax.random.key(config.seed))), out_shardings=mesh.replicated
  )()
  sample_inputs, _ = task.train_batch(0)
  state = jax.jit(step_lib.create_train_state, static_argnums=(0, 1, 4), out_shardings=mesh.replicated)(
    plan.model, plan.tx, init_key, jnp.asarray(sample_inputs[:1]), task.start
  )
  num_params = models.count_params(state.params)
  with interrupts.deferred():
    restored = ckpt.restore_latest(state)
  start_step = 0
  if restored is not None:
    start_step, state = restored
    if is_main:
      print(f"resuming from checkpoint {start_step} in {ckpt.directory}", flush=True)
  position.step = start_step
  if is_main:
    history.truncate_after(metrics_path, start_step)

  step_fn = jax.jit(
    functools.partial(step_lib.train_step, model=plan.model, tx=plan.tx, loss=task.loss),
    donate_argnums=0,
    out_shardings=mesh.replicated,
  )
  predict = jax.jit(functools.partial(step_lib.eval_step, model=plan.model), out_shardings=mesh.replicated)
  eval_size = max(num_devices, train_cfg.eval_batch_size // num_devices * num_devices)
  log = train_log.TrainLog(
    metrics_path if is_main else None,
    plan.schedule,
    train_cfg.batch_size,
    tqdm.tqdm(
      total=total_steps, initial=start_step, disable=not (train_cfg.progress_bar and is_main), dynamic_ncols=True
    ),
    start_step,
  )
  custom_metadata = run_folder.checkpoint_metadata(config.model_dump(mode="json"))
  test_result, predictions, last_eval_step = None, None, None
  # Several hosts: a signal is held back (train_and_evaluate) and acted on at a log step, where every
  # process asks whether any got one, so that all stop at the same step with the same checkpoint.
  several = jax.process_count() > 1
  try:
    for step in range(start_step + 1, total_steps + 1):
      x, y = task.train_batch(step - 1)
      state, metrics = step_fn(state, mesh.put_batch(x), mesh.put_batch(y), dropout_key)
      position.step = step
      log.add(step, metrics)
      is_last = step == total_steps
      do_eval = step % plan.eval_every == 0 or is_last
      do_ckpt = step % plan.checkpoint_every == 0 or do_eval
      stop = 0  # the signal that stops every process at this step
      if step % train_cfg.log_every == 0 or do_ckpt:
        try:  # the one host sync of a log interval; checks every step's loss
          log.flush(step)
        except train_log.NonFiniteLossError as e:
          latest = ckpt.steps()
          kept = (
            f"the last good checkpoint, step {latest[-1]}, is kept in {ckpt.directory}"
            if latest
            else "no checkpoint had been saved yet"
          )
          raise train_log.NonFiniteLossError(
            f"{e}; {kept}. Lower optimizer.learning_rate or set optimizer.clip_global_norm."
          ) from None
        if several:
          stop = agreement.any_process(interrupts.take_pending())
      if do_eval:
        test_result, predictions = step_lib.evaluate(task, predict, state.params, mesh, eval_size)
        last_eval_step = step
        log.test(step, test_result, echo=train_cfg.progress_bar and is_main)
      if do_ckpt or stop:
        with interrupts.deferred():  # a signal waits for the save to finish
          ckpt.save(
            step,
            state,
            metrics={"test_loss": test_result["loss"]} if do_eval else None,
            custom_metadata=custom_metadata,
          )
      if stop:
        raise interrupts.Interrupted(stop)
      if do_eval or do_ckpt:
        log.restart_clock()  # evaluation and saving are not training time
    if several:
      interrupts.take_pending()  # a signal after the last log step: the run is complete anyway
  finally:
    log.close()
  if last_eval_step != total_steps:  # resumed after the end, or nothing left to run
    test_result, predictions = step_lib.evaluate(task, predict, state.params, mesh, eval_size)
  return _Outcome(
    state, start_step, num_params, log.compile_seconds, log.train_seconds, test_result, predictions, ckpt.best()
  )


def _summarize(config: schema.TrainConfig, plan: Plan, workdir: str, outcome: _Outcome) -> dict:
  """Writes the loss plot, the task's results and ``summary.json``, each whole or not at all; returns the summary."""
  task = plan.task
  epochs_run = (plan.total_steps - outcome.start_step) / task.steps_per_epoch if task.steps_per_epoch else None
  summary = {
    "task": task.name,
    "model": config.model.kind,
    "seed": config.seed,
    "num_params": outcome.num_params,
    "steps": plan.total_steps,
    "epochs": config.train.num_epochs,
    "devices": jax.device_count(),
    "resumed_from_step": outcome.start_step,
    "compile_seconds": outcome.compile_seconds,
    "train_seconds": outcome.train_seconds,
    "seconds_per_epoch": outcome.train_seconds / epochs_run if epochs_run else None,
    "test": outcome.test,  # everything task.evaluate returns
    "best_checkpoint": {"step": outcome.best[0], "test_loss": outcome.best[1]} if outcome.best else None,
  }
  if jax.process_index() == 0:
    records = history.read(os.path.join(workdir, "metrics.jsonl"))
    with files.staged(workdir, "the loss plot and the task's results") as stage:
      plots.plot_losses(
        os.path.join(stage, "loss.png"),
        [(r["step"], r["loss"]) for r in records if r["split"] == "train" and "event" not in r],
        [(r["step"], r["loss"]) for r in records if r["split"] == "test"],
        title=f"{task.name}, {config.model.kind}",
      )
      task.save_result(outcome.predictions, stage)
    with files.atomic_write(os.path.join(workdir, "summary.json")) as f:  # last: it marks the run finished
      json.dump(summary, f, indent=2)
  return summary
