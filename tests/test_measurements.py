"""experiments/measure.py: the measurements beside the benchmark, run by name, timed by one helper."""

import importlib.util
import pathlib

import pytest

from benchmarking import timing

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def measure():
  spec = importlib.util.spec_from_file_location("measure_entry_point", ROOT / "experiments" / "measure.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_an_unknown_measurement_is_refused_by_name(measure):
  with pytest.raises(
    SystemExit,
    match=r"measurement must be one of layer_options, speed_probe, pallas_roofline, "
    r"onnx_timing; got 'speed'",
  ):
    measure.main(["speed"])


@pytest.mark.parametrize("name", ["layer_options", "speed_probe", "pallas_roofline", "onnx_timing"])
def test_every_measurement_loads_and_lists_its_options(measure, name, capsys):
  with pytest.raises(SystemExit) as stop:
    measure.main([name, "--help"])
  assert stop.value.code == 0
  assert "usage:" in capsys.readouterr().out


def test_the_roofline_prints_its_tables(measure, capsys):
  measure.main(["pallas_roofline"])
  out = capsys.readouterr().out
  assert out.startswith("Assumed device: Device(name='H100 SXM5'")
  assert out.count("| bfloat16 |") >= 1 and out.count("| float32 |") >= 1


def test_the_speed_probe_times_each_implementation_interleaved(measure, capsys):
  measure.main(["speed_probe", "--shapes", "2x3x2x4", "--impls", "flax,custom_vjp", "--modes", "fwd", "--rounds", "2"])
  lines = capsys.readouterr().out.splitlines()
  assert lines[0] == "2x3x2x4 fwd"
  assert [line.split()[0] for line in lines[1:]] == ["flax", "custom_vjp"]
  assert "x flax" in lines[2]  # custom_vjp's ratio to flax, from the same interleaved rounds


def test_interleaved_samples_rotate_and_count_cpu_time():
  order = []
  samples = timing.time_interleaved_with_cpu({n: (lambda n=n: order.append(n)) for n in "abc"}, repeats=2, warmup=1)
  assert order == list("abcbcacab")  # round r starts at call r mod 3
  assert {n: len(v) for n, v in samples.cpu.items()} == {"a": 2, "b": 2, "c": 2}
  assert all(c >= 0 for v in samples.cpu.values() for c in v)
  with pytest.raises(ValueError, match="need repeats >= 1"):
    timing.time_interleaved({"a": lambda: None}, repeats=0)
