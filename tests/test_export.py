"""jaxgru.export: ONNX Runtime against jaxgru, against PyTorch's own export, the StableHLO round trip, bad input."""

import io
import os
import pathlib
import re
import runpy
import shutil
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxgru
from helpers import gru_params
from jaxgru import export
from training import run_export as forecaster_export

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

B, T, I, H = 3, 5, 2, 4  # batch, time, input and hidden features
LENGTHS = np.array([5, 2, 0], np.int32)  # full, ragged, empty


def layer_variables(seed, *, num_layers=1, bidirectional=False, use_bias=True, **_):
  """Random ``{"params": ...}`` of a GRU layer with input ``I`` and hidden ``H`` (no ``layer.init`` compile)."""
  directions = 2 if bidirectional else 1
  keys = jax.random.split(jax.random.key(seed), num_layers * directions)
  params = {}
  for l in range(num_layers):
    for d in range(directions):
      p = gru_params(keys[l * directions + d], I if l == 0 else directions * H, H)
      params[jaxgru.param_name(l, d)] = p if use_bias else {k: p[k] for k in ("input_kernel", "recurrent_kernel")}
  return {"params": params}


def run_onnx(model, feeds):
  session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
  return session.run(None, {name: np.asarray(value) for name, value in feeds.items()})


# Each case: layer options (the nnx API when "api" is "nnx"), with sequence_lens, with initial_h. Together they
# cover layers 1-3, both directions and variants, use_bias on and off, both layouts, a length of 0, every activation.
CASES = {
  "1-layer": (dict(), False, False),
  "2-layers-bidirectional-lengths-initial": (dict(num_layers=2, bidirectional=True), True, True),
  "3-layers-bidirectional-reset_before-no_bias-time_major-lengths": (
    dict(num_layers=3, bidirectional=True, variant="reset_before", use_bias=False, time_major=True),
    True,
    False,
  ),
  "2-layers-reset_before-time_major-initial-softsign": (
    dict(num_layers=2, variant="reset_before", time_major=True, activation_fn=jax.nn.soft_sign),
    False,
    True,
  ),
  "bidirectional-no_bias-hard_sigmoid-relu-lengths-initial": (
    dict(bidirectional=True, use_bias=False, gate_fn=jax.nn.hard_sigmoid, activation_fn=jax.nn.relu),
    True,
    True,
  ),
  "nnx-2-layers-bidirectional-reset_before-lengths-initial": (
    dict(api="nnx", num_layers=2, bidirectional=True, variant="reset_before"),
    True,
    True,
  ),
}


@pytest.mark.parametrize("options, with_lengths, with_initial", list(CASES.values()), ids=list(CASES))
def test_onnx_runtime_equals_jaxgru(options, with_lengths, with_initial):
  options = dict(options)
  api = options.pop("api", "linen")
  time_major = options.get("time_major", False)
  states = options.get("num_layers", 1) * (2 if options.get("bidirectional") else 1)
  keys = jax.random.split(jax.random.key(1), 2)
  x = np.asarray(jax.random.normal(keys[0], (T, B, I) if time_major else (B, T, I)))
  kwargs = {}
  if with_lengths:
    kwargs["seq_lengths"] = LENGTHS
  if with_initial:
    kwargs["initial_carry"] = np.asarray(jax.random.normal(keys[1], (states, B, H)))
  if api == "nnx":
    layer = jaxgru.nnx.GRU(I, H, **options, rngs=nnx.Rngs(0))
    args = (layer,)
    graphdef, state = nnx.split(layer)
    y, h_n = jax.jit(lambda state, x, kw: nnx.merge(graphdef, state)(x, **kw))(state, x, kwargs)
  else:
    layer, variables = jaxgru.GRU(H, **options), layer_variables(0, **options)
    args = (layer, variables)
    y, h_n = jax.jit(lambda v, x, kw: layer.apply(v, x, **kw))(variables, x, kwargs)

  model = export.to_onnx(*args, with_sequence_lens=with_lengths, with_initial_h=with_initial)
  onnx.checker.check_model(model, full_check=True)
  assert [n.op_type for n in model.graph.node].count("GRU") == options.get("num_layers", 1)
  assert model.opset_import[0].version == export.DEFAULT_OPSET
  feeds = {export.INPUTS: x}
  if with_lengths:
    feeds[export.SEQUENCE_LENS] = LENGTHS
  if with_initial:
    feeds[export.INITIAL_H] = kwargs["initial_carry"]
  y_ort, h_ort = run_onnx(model, feeds)
  for got, want in ((y_ort, y), (h_ort, h_n)):
    assert got.shape == want.shape and got.dtype == want.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  if with_lengths:  # padded steps are exactly zero, as jaxgru's
    y_bt = y_ort if not time_major else y_ort.swapaxes(0, 1)
    assert not y_bt[1, 2:].any() and not y_bt[2].any()


def test_pytorch_export_and_jaxgru_export_agree_in_onnx_runtime():
  torch = pytest.importorskip("torch")
  torch.manual_seed(0)
  torch_gru = torch.nn.GRU(I, H, num_layers=2, bidirectional=True, batch_first=True)
  x, h0 = torch.randn(B, T, I), torch.randn(4, B, H)
  buffer = io.BytesIO()
  with warnings.catch_warnings():  # PyTorch's TorchScript exporter warns about its own tracing
    warnings.simplefilter("ignore")
    torch.onnx.export(
      torch_gru,
      (x, h0),
      buffer,
      input_names=["x", "h0"],
      output_names=["y", "h_n"],
      dynamic_axes={"x": {0: "batch", 1: "time"}, "h0": {1: "batch"}},
      opset_version=17,
      dynamo=False,
    )
  torch_model = onnx.load_from_string(buffer.getvalue())
  assert [n.op_type for n in torch_model.graph.node].count("GRU") == 2  # PyTorch emits the native operator too
  y_torch, h_torch = run_onnx(torch_model, {"x": x.numpy(), "h0": h0.numpy()})
  layer, variables = jaxgru.interop.from_torch(torch_gru)
  ours = export.to_onnx(layer, variables, with_initial_h=True)
  y_ours, h_ours = run_onnx(ours, {"inputs": x.numpy(), "initial_h": h0.numpy()})
  np.testing.assert_allclose(y_ours, y_torch, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(h_ours, h_torch, rtol=1e-5, atol=1e-5)
  # Batch and time are dynamic: another size, against PyTorch itself.
  assert [d.dim_param for d in ours.graph.input[0].type.tensor_type.shape.dim] == ["batch", "time", ""]
  x, h0 = torch.randn(5, 8, I), torch.randn(4, 5, H)
  with torch.no_grad():
    y_eager, h_eager = torch_gru(x, h0)
  for got, want in zip(run_onnx(ours, {"inputs": x.numpy(), "initial_h": h0.numpy()}), (y_eager, h_eager)):
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)


def test_stablehlo_round_trip_is_bit_identical_at_two_batch_sizes(tmp_path):
  layer, variables = jaxgru.GRU(H), layer_variables(3)
  forward = jax.jit(lambda x, lengths: layer.apply(variables, x, seq_lengths=lengths))
  path = tmp_path / "gru.stablehlo"
  example = (jax.ShapeDtypeStruct((1, T, I), jnp.float32), jax.ShapeDtypeStruct((1,), jnp.int32))
  export.to_stablehlo(forward, *example, symbolic=["b, t, 2", "b"], path=path)
  loaded = export.load_stablehlo(path)
  assert [str(a) for a in loaded.in_avals] == ["float32[b,t,2]", "int32[b]"]
  for batch, steps in ((2, T), (5, 3)):
    x = jax.random.normal(jax.random.key(batch), (batch, steps, I))
    lengths = jnp.arange(batch, dtype=jnp.int32) % (steps + 1)
    for got, want in zip(loaded.call(x, lengths), forward(x, lengths)):
      assert got.shape == want.shape and got.dtype == want.dtype
      np.testing.assert_array_equal(got, want)  # bit-identical
  with pytest.raises(FileExistsError, match="already exists.*force=True"):
    export.to_stablehlo(forward, *example, path=path)
  with pytest.raises(ValueError, match=r"symbolic\[0\] = 'b, 3' does not fit argument 0"):
    export.to_stablehlo(forward, *example, symbolic=["b, 3", None])
  with pytest.raises(FileNotFoundError, match="no StableHLO module"):
    export.load_stablehlo(tmp_path / "missing.stablehlo")


@pytest.mark.parametrize(
  "options, error, match",
  [
    (dict(gate_fn=jax.nn.gelu), ValueError, r"gate_fn='gelu' has no equal among the activations of ONNX's GRU"),
    (dict(activation_fn=jax.nn.swish), ValueError, r"activation_fn='silu' has no equal"),
    (dict(dtype=jnp.bfloat16), ValueError, r"dtype=bfloat16 is not supported: the exported graph computes in float32"),
    (dict(param_dtype=jnp.bfloat16), ValueError, r"param_dtype=bfloat16 is not supported"),
  ],
)
def test_options_onnx_cannot_express_are_refused(tmp_path, options, error, match):
  path = tmp_path / "gru.onnx"
  with pytest.raises(error, match=match):
    export.to_onnx(jaxgru.GRU(H, **options), layer_variables(0), path=path)
  assert not os.listdir(tmp_path)  # nothing written


def test_training_time_options_export_the_inference_graph():
  variables = layer_variables(0, num_layers=2)
  plain = export.to_onnx(jaxgru.GRU(H, num_layers=2), variables)
  trained = jaxgru.GRU(H, num_layers=2, dropout=0.5, recurrent_dropout=0.25, remat="step", unroll=2)
  assert export.to_onnx(trained, variables).SerializeToString() == plain.SerializeToString()


def test_bad_paths_and_arguments_write_nothing(tmp_path, monkeypatch):
  layer, variables = jaxgru.GRU(H), layer_variables(0)
  with pytest.raises(FileNotFoundError, match="folder .*missing does not exist"):
    export.to_onnx(layer, variables, path=tmp_path / "missing" / "gru.onnx")
  with pytest.raises(IsADirectoryError, match="is a folder"):
    export.to_onnx(layer, variables, path=tmp_path)
  existing = tmp_path / "gru.onnx"
  existing.write_bytes(b"a user's file")
  with pytest.raises(FileExistsError, match="already exists; choose another path or pass force=True"):
    export.to_onnx(layer, variables, path=existing)
  assert existing.read_bytes() == b"a user's file"
  model = export.to_onnx(layer, variables, path=existing, force=True)
  assert onnx.load(existing) == model and os.listdir(tmp_path) == ["gru.onnx"]  # replaced, no temporary left
  # A larger graph of the user's own is written by the same rules.
  with pytest.raises(FileExistsError, match="already exists; choose another path or pass force=True"):
    export.onnx_model(model.graph, path=existing)
  with pytest.raises(TypeError, match="onnx_model force must be True or False, got 'yes'"):
    export.onnx_model(model.graph, path=tmp_path / "other.onnx", force="yes")
  assert sorted(os.listdir(tmp_path)) == ["gru.onnx"]
  own = export.onnx_model(model.graph, doc="mine", path=tmp_path / "own.onnx")
  assert (tmp_path / "own.onnx").read_bytes() == own.SerializeToString()
  with pytest.raises(ValueError, match="opset must be an integer from 14"):
    export.to_onnx(layer, variables, opset=13)
  with pytest.raises(TypeError, match="takes no variables with a jaxgru.nnx.GRU"):
    export.to_onnx(jaxgru.nnx.GRU(I, H, rngs=nnx.Rngs(0)), variables)
  with pytest.raises(ValueError, match=r"variables hold \['layer_0'\], but the layer expects \['layer_0', 'layer_1'\]"):
    export.to_onnx(jaxgru.GRU(H, num_layers=2), variables)
  with pytest.raises(
    ValueError, match=r"layer_0/input_kernel is \(2, 12\) float32, expected \(2, 15\) float32 \(features=5"
  ):
    export.to_onnx(jaxgru.GRU(H + 1), variables)
  with pytest.raises(TypeError, match="expects a jaxgru.GRU"):
    export.to_onnx(jaxgru.MinGRU(H), variables)
  monkeypatch.setitem(sys.modules, "onnx", None)  # as without the extra
  with pytest.raises(ImportError, match=r"pip install 'jaxgru\[onnx\]'"):
    export.to_onnx(layer, variables)


def test_exported_forecaster_reproduces_forecast_csv(energy_runs, tmp_path, capsys):
  from test_training_loop import REPO  # pylint: disable=g-import-not-at-top

  workdir = str(tmp_path / "run")  # a copy: the shared run folder stays as trained
  shutil.copytree(energy_runs["gru"][0], workdir)
  main = runpy.run_path(os.path.join(REPO, "experiments", "predict.py"))["main"]
  result = main(["--workdir", workdir])  # WORKDIR/forecast.csv
  for fmt in ("onnx", "stablehlo"):
    assert main(["--workdir", workdir, "--export", fmt]) == os.path.join(workdir, f"forecaster.{fmt}")
  # The lines of docs/guide/export.md, on this run.
  readme = (pathlib.Path(REPO) / "docs" / "guide" / "export.md").read_text(encoding="utf-8")
  (lines,) = [
    block for block in re.findall(r"```py\n(.*?)```", readme, flags=re.S) if 'workdir = "runs/energy_default"' in block
  ]
  assert 'workdir = "runs/energy_default"' in lines
  namespace = {}
  exec(lines.replace('"runs/energy_default"', repr(workdir)), namespace)  # pylint: disable=exec-used
  windows, load = namespace["windows"], namespace["load"]
  assert windows.shape == (len(result.forecast), 12, 5) and load.dtype == np.float32
  np.testing.assert_allclose(load, result.forecast, rtol=1e-5)  # the forecasts before the CSV's rounding
  stablehlo = export.load_stablehlo(os.path.join(workdir, "forecaster.stablehlo"))
  np.testing.assert_allclose(stablehlo.call(windows), result.forecast, rtol=1e-5)
  # Bad input stops before anything is written or overwritten.
  before = pathlib.Path(workdir, "forecaster.onnx").read_bytes()
  capsys.readouterr()
  for argv, message in (
    (
      ["--export", "onnx"],
      r"forecaster.onnx already exists \(a complete model file\); choose another --out or pass --force",
    ),
    (["--export", "onnx", "--out", str(tmp_path / "no" / "f.onnx")], "folder .*no does not exist"),
    (
      ["--export", "onnx", "--csv", "x.csv"],
      "--csv and --issue-time choose what to forecast, --export writes the model",
    ),
    (["--export", "tflite"], "invalid choice: 'tflite'"),
  ):
    with pytest.raises(SystemExit) as stop:
      main(["--workdir", workdir, *argv])
    # One line: sys.exit's message for our checks, argparse's usage error otherwise.
    said = stop.value.code if isinstance(stop.value.code, str) else capsys.readouterr().err
    assert re.search(message, said), said
  assert pathlib.Path(workdir, "forecaster.onnx").read_bytes() == before
  with pytest.raises(
    ValueError, match="ONNX export needs a GRU model, this run has model.kind='lstm'; use --export stablehlo"
  ):
    forecaster_export.export_forecaster(energy_runs["lstm"][0], "onnx", path=str(tmp_path / "lstm.onnx"))
  assert not (tmp_path / "lstm.onnx").exists()
