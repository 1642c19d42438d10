"""The GPU check's report: the state of one ``experiments/gpu_check.py`` run as one Markdown page."""

from __future__ import annotations

from benchmarking.gpu_analysis import CURRENT_GPU_AUTO


def _fmt(value, spec=".2f"):
  return "n/a" if value is None else format(value, spec)


def markdown(state: dict) -> str:
  """The whole report as one Markdown page."""
  env = state["environment"]
  lines = [
    "# jaxgru on a GPU: the prepared check",
    "",
    f"- command: `{env.get('command')}`",
    f"- plan: {state['plan']['name']}, budget {state['plan']['budget_s']:.0f} s;"
    f" ran {state.get('wall_s', 0):.0f} s; parts: " + ", ".join(f"{k} {v}" for k, v in state["parts"].items()),
    f"- device: JAX {env.get('jax_backend')} ({env.get('jax_device')}); nvidia-smi: {env.get('nvidia_smi')};"
    f" torch CUDA {env.get('torch_cuda')}, cuDNN {env.get('torch_cudnn')}, torch on {env.get('torch_device')}",
    f"- versions: python {env.get('python')}, " + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v),
    f"- run: {env.get('utc')}, git {env.get('git_commit')}, {env.get('cpu_count')} CPUs ({env.get('cpu')})",
    "",
  ]
  lines += [
    "## Correctness against float64",
    "",
    "`torch.nn.GRU` in float64 on the CPU, packed variable lengths, bidirectional, "
    f"B,T,I,H = {state['plan']['accuracy_shape']}, {state['plan']['accuracy_layers']} layers; outputs, final states"
    " and the gradients of every input, initial state and weight; relative error ||x - ref|| / ||ref|| per array"
    " (worst shown), fresh data per check.",
    "",
    "| implementation | dtype | status | worst array | relative error | tolerance | first call s |",
    "|---|---|---|---|---|---|---|",
  ]
  for r in state.get("accuracy", []):
    lines.append(
      f"| {r['implementation']} | {r['dtype']} | {r['status']}{': ' + r['message'] if r.get('message') else ''} |"
      f" {r.get('worst') or '-'} | {_fmt(r.get('worst_error'), '.2e')} | {_fmt(r.get('tolerance'), '.0e')} |"
      f" {_fmt(r.get('seconds'), '.1f')} |"
    )
  if state.get("layers_md"):
    lines += [
      "",
      "## Layer timings",
      "",
      "Interleaved on the same weights; median and IQR of 10 timed calls; ×flax/×torch are ratios of medians;"
      " rows checked first against a float32 reference at highest precision (gpu.yaml's tolerances); memory:"
      " XLA's buffers of one compiled call (JAX), `torch.cuda.max_memory_allocated` (torch).",
      "",
      state["layers_md"],
    ]
  if state.get("layers_skipped"):
    lines += ["Not run (time budget): " + ", ".join(f"{c['name']} {c['dtype']}" for c in state["layers_skipped"]), ""]
  if state.get("goals"):
    lines += [
      "### Goals (forward+backward): jaxgru ≤ 1.0× torch (cuDNN), ≤ 0.5× flax",
      "",
      "| case | fastest jaxgru row | ×torch | ×flax | " + f"{CURRENT_GPU_AUTO} (auto today) ×torch | ×flax |",
      "|---|---|---|---|---|---|",
    ]
    for g in state["goals"]:
      lines.append(
        f"| {g['case']} | {g['best']} | {_fmt(g['best_x_torch'])} | {_fmt(g['best_x_flax'])} |"
        f" {_fmt(g['auto_x_torch'])} | {_fmt(g['auto_x_flax'])} |"
      )
    lines.append("")
  if state.get("train_step_md"):
    lines += [
      "## One training step of the post's model",
      "",
      "GRU 5 -> 256 x 2, dropout 0.2, ReLU + Linear on the last step, MSE, Adam 1e-3, batch 1024, lookback 90;"
      " checked after one step from the same weights with dropout off (tolerance atol 2.5e-3: Adam's first"
      " step moves each weight by ±1e-3).",
      "",
      state["train_step_md"],
    ]
  energy = state.get("energy")
  if energy:
    lines += [
      "## The post's experiment on the real load data: GRU against LSTM",
      "",
      f"`configs/energy_gru.yaml` / `energy_lstm.yaml` with overrides {energy['overrides']};"
      f" {energy['steps_per_epoch']} steps per epoch. After the post's {energy['post_epochs']} epochs"
      " (the same run's evaluation at that step: constant learning rate):",
      "",
      "| model | seed | sMAPE % | MAE | RMSE |",
      "|---|---|---|---|---|",
    ]
    for r in energy["post"]:
      lines.append(
        f"| {r['model']} | {r['seed']} | {_fmt(r.get('smape'), '.3f')} | {_fmt(r.get('mae'))} | {_fmt(r.get('rmse'))} |"
      )
    lines += [
      "",
      f"After {energy['long_epochs']} epochs (s / epoch: training time per epoch, without compiling,"
      " evaluation or checkpoints):",
      "",
      energy["markdown_long"],
      "",
      energy["markdown_seeds"],
      "",
    ]
    if energy["not_run"]:
      lines += ["Not run (time budget): " + ", ".join(f"{r['model']} seed {r['seed']}" for r in energy["not_run"]), ""]
  proposal = state.get("proposal")
  if proposal:
    lines += [
      '## Proposal: `"auto"` on this GPU',
      "",
      f'Today `"auto"` on a GPU is `{proposal["current"]}`. Forward+backward timings, per H '
      "(geometric mean of median ratios to the current choice over the cases of that H):",
      "",
      "| H | cases | fastest | ratios to current | proposed | why |",
      "|---|---|---|---|---|---|",
    ]
    for e in proposal["by_hidden"]:
      ratios = ", ".join(f"{k} {v:.2f}" for k, v in e["geomean_ratio_to_current"].items())
      lines.append(
        f"| {e['hidden']} | {'; '.join(e['cases'])} | {e['fastest']} | {ratios} | {e['choice']} | {e['why']} |"
      )
    lines += ["", f"As a table for `jaxgru/_src/dispatch.py`: `{proposal['dispatch_rule']}`", ""]
  if state.get("errors"):
    lines += ["## Errors", ""] + [f"- {e}" for e in state["errors"]] + [""]
  return "\n".join(lines) + "\n"
