"""Tests of the benchmark's configs, reports and entry point (experiments/benchmark.py); no test asserts a time."""

import dataclasses
import importlib.util
import json
import pathlib

import jax
import matplotlib.image
import pytest

import benchmarking
from benchmark_helpers import CONFIGS
from benchmark_helpers import LAYER_MODES
from benchmark_helpers import TINY
from benchmark_helpers import load_entry_point as _load_entry_point
from benchmarking import results
from benchmarking import timing
from training.config_files import ConfigError

# --- config -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cpu.yaml", "gpu.yaml"])
def test_shipped_configs_load(name):
  config = benchmarking.load(CONFIGS / name)
  assert len(config.shapes) >= 4 and config.repeats >= 10
  assert set(config.modes) == LAYER_MODES
  assert all(len(shape) == 4 for shape in config.shapes)


def test_cpu_config_has_the_four_target_shapes():
  config = benchmarking.load(CONFIGS / "cpu.yaml")
  for shape in [(32, 128, 64, 128), (16, 1024, 32, 64), (64, 512, 128, 256), (256, 64, 256, 512)]:
    assert shape in config.shapes


def test_gpu_config_has_float32_and_bfloat16():
  assert set(benchmarking.load(CONFIGS / "gpu.yaml").dtypes) == {"float32", "bfloat16"}


def test_overrides_apply():
  config = benchmarking.load(
    CONFIGS / "cpu.yaml",
    ["shapes=[[1,2,3,4]]", "repeats=12", "implementations.exclude=[torch]", "modes=[forward]", "results_dir=/tmp/x"],
  )
  assert config.shapes == ((1, 2, 3, 4),)
  assert config.repeats == 12
  assert config.modes == (benchmarking.Mode.FORWARD,)
  assert "torch" not in config.implementations.selected()
  assert "flax" in config.implementations.selected()
  assert config.results_dir == "/tmp/x"


@pytest.mark.parametrize(
  "override, fragment",
  [
    ("no_such_key=1", "unknown key 'no_such_key'"),
    ("implementations.nope=[]", "unknown key 'implementations.nope'"),
    ("repeats=ten", "repeats"),
    ("repeats=5", "repeats"),  # fewer than 10 timed runs
    ("repeats=10.5", "repeats"),
    ("shapes=[[1,2,3]]", "shapes"),
    ("shapes=[[1,2,3,0]]", "shapes"),
    ("dtypes=[float64]", "dtypes"),
    ("modes=[sideways]", "modes"),
    ("implementations.include=[jaxgru.nope]", "unknown implementations"),
    ("dtypes=[float16]", "tolerances has no entry"),  # cpu.yaml lists float32 tolerances only
  ],
)
def test_bad_config_raises_config_error(override, fragment):
  with pytest.raises(ConfigError, match=fragment.replace("[", r"\[")):
    benchmarking.load(CONFIGS / "cpu.yaml", [override])


def test_missing_config_file():
  with pytest.raises(FileNotFoundError):
    benchmarking.load(CONFIGS / "no_such.yaml")


# --- reports ------------------------------------------------------------------------------------


def _row(name, median, status="ok", framework="jax"):
  if status != "ok":
    return results.RowResult(name, status, f"{status} because of a test", max_abs_diff=float("inf"))
  times = (median * 0.9, median, median * 1.2)
  return results.RowResult(
    name, "ok", "ok", framework, 1e-7, {"outputs": 1e-7}, 0.5, times, timing.summarize(times), 100 / median, None
  )


def _synthetic_report():
  rows = [
    _row("jaxgru.scan", 0.01),
    _row("flax", 0.02),
    _row("torch", 0.04, framework="torch"),
    _row("jaxgru.bad", 0.0, status="mismatch"),
    _row("equinox", 0.0, status="skipped"),
  ]
  case = results.CaseResult((2, 50, 3, 4), "float32", "forward", 1, tuple(results.with_ratios(rows)))
  config = benchmarking.load(CONFIGS / "cpu.yaml", TINY)
  return results.Report(results.environment(), config.model_dump(mode="json"), 1.0, (case,))


def test_ratios_are_relative_to_flax_and_torch():
  rows = {r.name: r for r in _synthetic_report().cases[0].rows}
  assert rows["jaxgru.scan"].ratio_to == pytest.approx({"flax": 0.5, "torch": 0.25})
  assert rows["jaxgru.scan"].memory_ratio_to == {}  # no memory reported
  assert rows["flax"].ratio_to["flax"] == pytest.approx(1.0)
  assert rows["jaxgru.bad"].ratio_to == {}


def test_memory_ratios_where_reported():
  rows = [
    dataclasses.replace(_row("flax", 0.02), memory_bytes=2000),
    dataclasses.replace(_row("jaxgru.scan", 0.01), memory_bytes=1000),
    _row("torch", 0.04),
  ]
  by_name = {r.name: r for r in results.with_ratios(rows)}
  assert by_name["jaxgru.scan"].memory_ratio_to == {"flax": 0.5}


def test_writers_produce_well_formed_files(tmp_path):
  paths = benchmarking.write_all(_synthetic_report(), tmp_path / "out")
  data = json.loads(pathlib.Path(paths["json"]).read_text())
  rows = {r["name"]: r for r in data["cases"][0]["rows"]}
  assert rows["jaxgru.scan"]["stats"]["median"] == pytest.approx(0.01)
  assert rows["jaxgru.bad"]["max_abs_diff"] == "inf" and rows["jaxgru.bad"]["status"] == "mismatch"
  assert data["environment"]["versions"]["jax"] == jax.__version__
  table = pathlib.Path(paths["markdown"]).read_text()
  table_rows = [line for line in table.splitlines() if line.startswith("| 2x50x3x4")]
  assert len(table_rows) == 5
  assert all(line.count("|") == table_rows[0].count("|") for line in table_rows)
  assert "FAILED CHECK" in table and "skipped" in table
  image = matplotlib.image.imread(paths["chart"])
  assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


# --- end to end ---------------------------------------------------------------------------------


def test_end_to_end_through_the_entry_point(tmp_path, capsys):
  out = tmp_path / "run"
  entry = _load_entry_point()
  smoke = ["--cpu-smoke"] if jax.default_backend() != "gpu" else []
  rc = entry.main(
    [
      "--config",
      str(CONFIGS / "gpu.yaml"),
      *smoke,
      "cpu_smoke_shapes=[[2,6,3,4]]",
      "shapes=[[2,6,3,4]]",
      "dtypes=[float32]",
      "implementations.include=[jaxgru.scan,flax,torch]",
      "--out",
      str(out),
      "--note",
      "test run",
    ]
  )
  assert rc == 0
  data = json.loads((out / "results.json").read_text())
  assert [(c["mode"], c["dtype"]) for c in data["cases"]] == [("forward", "float32"), ("forward_backward", "float32")]
  torch_installed = importlib.util.find_spec("torch") is not None
  for case in data["cases"]:
    rows = {r["name"]: r for r in case["rows"]}
    assert list(rows) == ["jaxgru.scan", "flax", "torch"]
    assert rows["jaxgru.scan"]["status"] == "ok" and len(rows["jaxgru.scan"]["times_s"]) == 10
    assert rows["torch"]["status"] == ("ok" if torch_installed else "skipped")
    assert rows["jaxgru.scan"]["memory_bytes"] is None or rows["jaxgru.scan"]["memory_bytes"] > 0
  assert (out / "results.md").read_text().startswith("# GRU benchmark\n\n> test run")
  assert (out / "tokens_per_s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert benchmarking.load(out / "config.yaml").shapes == ((2, 6, 3, 4),)
  assert "| 2x6x3x4 | flax |" in capsys.readouterr().out


def test_entry_point_rejects_a_bad_config_before_writing(tmp_path, capsys):
  out = tmp_path / "never"
  rc = _load_entry_point().main(["--config", str(CONFIGS / "cpu.yaml"), "repeats=3", "--out", str(out)])
  assert rc == 2 and not out.exists()
  assert "repeats" in capsys.readouterr().err


@pytest.mark.skipif(jax.default_backend() == "gpu", reason="checks the refusal on a machine without a GPU")
def test_gpu_config_without_a_gpu_stops_at_once(tmp_path, capsys):
  out = tmp_path / "never"
  rc = _load_entry_point().main(["--config", str(CONFIGS / "gpu.yaml"), "--out", str(out)])
  err = capsys.readouterr().err
  assert rc == 2 and not out.exists() and err.count("\n") == 1
  assert "GPU config" in err and "--cpu-smoke" in err
  smoke = benchmarking.for_this_machine(benchmarking.load(CONFIGS / "gpu.yaml"), "cpu", cpu_smoke=True)
  assert smoke.shapes == benchmarking.load(CONFIGS / "gpu.yaml").cpu_smoke_shapes
  assert max(b * t * h for b, t, _, h in smoke.shapes) <= 8 * 128 * 32
  with pytest.raises(benchmarking.DeviceError, match="this machine has a GPU"):
    benchmarking.for_this_machine(smoke, "gpu", cpu_smoke=True)
  assert benchmarking.for_this_machine(benchmarking.load(CONFIGS / "cpu.yaml"), "cpu").shapes  # any device
  rc = _load_entry_point().main(["--config", str(CONFIGS / "gpu.yaml"), "--cpu-smoke", "--update-results"])
  assert rc == 2 and "never replace the committed results" in capsys.readouterr().err


def test_runs_never_write_over_files(tmp_path, monkeypatch, capsys):
  held = tmp_path / "held"
  held.mkdir()
  (held / "results.md").write_text("a user's run")
  rc = _load_entry_point().main(["--config", str(CONFIGS / "cpu.yaml"), "--out", str(held)])
  assert rc == 2 and "already holds files" in capsys.readouterr().err
  assert (held / "results.md").read_text() == "a user's run"
  monkeypatch.chdir(tmp_path)  # the default folder is relative: runs/bench/<config>-<UTC time>
  entry = _load_entry_point()
  config = benchmarking.load(CONFIGS / "cpu.yaml")
  first = entry.output_dir("configs/bench/cpu.yaml", config, None, False)
  (pathlib.Path(first) / "results.md").write_text("first")
  second = entry.output_dir("configs/bench/cpu.yaml", config, None, False)
  assert pathlib.Path(first).resolve().parent == pathlib.Path(second).resolve().parent == tmp_path / "runs" / "bench"
  assert first != second and pathlib.Path(first).name.startswith("cpu-")
  assert entry.output_dir("configs/bench/cpu.yaml", config, None, True) == config.results_dir  # asked for
