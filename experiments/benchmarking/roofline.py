r"""The measured roofline of a row: each matrix product of its program, its time inside it, and the floor.

For a JAX row named in the config's ``roofline`` list, after the row is timed:

1. its compiled program's products are read from the optimized HLO
   (:func:`benchmarking.hlo_products.products`), with their FLOPs and how often
   one call runs each;
2. one profile of a few calls gives each product's time *inside the program*
   (:func:`benchmarking.hlo_products.thunk_seconds`);
3. every distinct product is then timed alone, in the same run, by each way
   this machine has to compute it: XLA as the program states it and as a plain
   ``[b, m, k] x [b, k, n]`` product, XLA again under each of the config's
   ``roofline_xla_flags`` (a fresh process per flag set: XLA reads its flags
   once), NumPy's BLAS and PyTorch's (MKL / oneDNN on the CPU, cuBLAS on a GPU),
   all interleaved (:func:`benchmarking.timing.time_interleaved`).

A product's *floor* is its FLOPs at the best of those rates; the step's floor
is the sum of its products' floors, and ``x floor`` is measured time over
floor (1.0: at the hardware's best measured rate). Operations that are not
matrix products (gates, Adam, copies) have no floor here: they show as the
step's time outside the products.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from benchmarking import hlo_products
from benchmarking import timing
from benchmarking.registry import Runner

_DTYPES = {"f32": "float32", "bf16": "bfloat16", "f16": "float16", "f64": "float64"}
PROFILED_CALLS = 3  # calls of the row in its profile


@dataclasses.dataclass(frozen=True)
class ProductRates:
  """One distinct product: its sizes and the seconds per run each source took alone."""

  label: str  # "b x m x k x n" of A [b, m, k] times B [b, k, n], and the dtype
  signature: tuple  # hlo_products.Product.signature
  flops: int  # of one run
  seconds: dict  # {source: median seconds of one run}

  @property
  def best(self) -> tuple[str, float]:
    """``(source, GFLOP/s)`` of the fastest source."""
    source = min(self.seconds, key=self.seconds.get)
    return source, self.flops / self.seconds[source] / 1e9


@dataclasses.dataclass(frozen=True)
class ThunkRoofline:
  """One thunk of the program that holds products (a dot, or a fusion around one or more)."""

  thunk: str
  products: tuple[str, ...]  # the label of each dot in it
  calls: int  # runs per call of the program (loop trips)
  in_loop: bool
  flops: int  # per call of the program, all its dots
  seconds: float | None  # per call of the program, measured inside it; None: not in the profile
  floor_s: float  # its dots' FLOPs at each one's best rate
  best_source: str  # the source of that rate (of its largest dot)

  @property
  def gflops(self) -> float | None:
    """The rate it reaches inside the program."""
    return None if not self.seconds else self.flops / self.seconds / 1e9


@dataclasses.dataclass(frozen=True)
class RowRoofline:
  """A row's program against the best rates this machine gives its products (seconds per call)."""

  row: str
  step_s: float  # the row's median time in the benchmark
  profiled_s: float  # wall clock per call while profiled (the profiler's own cost included)
  flops: int  # in matrix products
  products_s: float  # inside the product thunks (from the profile; they may overlap on threads)
  floor_s: float  # the products at their best measured rates
  thunks: tuple[ThunkRoofline, ...]
  rates: tuple[ProductRates, ...]
  sources: tuple[str, ...]
  unknown_trips: int = 0  # dots inside a loop of unknown trip count, left out


def label(product: hlo_products.Product) -> str:
  """``"[b x ]m x k x n dtype"`` of a product (the batch left out when it is 1)."""
  b, m, k, n = product.bmkn
  return (f"{b}x" if b > 1 else "") + f"{m}x{k}x{n} {product.dtype}"


def _plain(signature) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
  product = hlo_products.Product("", "", *signature, 1, False)
  b, m, k, n = product.bmkn
  return (b, m, k), (b, k, n)


def runs_per_call(flops: int, *, target_s: float = 0.01, rate: float = 1e11) -> int:
  """How many runs of a product one timed call makes: about ``target_s`` at ``rate`` FLOP/s, 1 to 1,000.

  A product of a few MFLOP takes microseconds, less than one dispatch; timed one
  run per call, it would measure the dispatch. Inside a program it runs without one.
  A thousand runs already make one dispatch (~10 us) at most 1% of a call of a
  product that takes a microsecond; more would only lengthen the run.

  >>> runs_per_call(2 * 1024 * 256 * 768), runs_per_call(2 * 92160 * 256 * 768)
  (2, 1)
  >>> runs_per_call(2 * 64 * 64 * 192)
  636
  """
  return int(min(1_000, max(1, round(target_s * rate / flops))))


def xla_calls(signature, runs: int, rng) -> dict:
  """``{source: call}``: XLA running the product ``runs`` times in one program, as stated and as a plain matmul.

  The loop reads its left operand from one of two slices in turn (as the
  recurrence reads a fresh state), so XLA cannot hoist the product out of it.
  """
  lhs, rhs, lc, rc, lb, rb, dtype, out = signature
  dtype, out = _DTYPES[dtype], _DTYPES[out]
  pa, pb = _plain(signature)
  calls = {}
  for source, (a_shape, b_shape, dims) in {
    "xla": (lhs, rhs, ((lc, rc), (lb, rb))),
    "xla plain": (pa, pb, (((2,), (1,)), ((0,), (0,)))),
  }.items():
    a = jnp.asarray(rng.standard_normal((2, *a_shape), dtype=np.float32), dtype)
    b = jnp.asarray(rng.standard_normal(b_shape, dtype=np.float32), dtype)

    def loop(a, b, dims=dims):
      def body(i, _):
        return jax.lax.dot_general(a[i % 2], b, dims, preferred_element_type=out)

      first = body(0, None)
      return jax.lax.fori_loop(1, runs, body, first)

    jitted = jax.jit(loop)
    calls[source] = lambda jitted=jitted, a=a, b=b: jitted(a, b).block_until_ready()
  return calls


def blas_calls(signature, runs: int, rng) -> dict:
  """``{source: call}``: NumPy's and PyTorch's matmul ``runs`` times into one output, where they compute the dtype."""
  pa, pb = _plain(signature)
  dtype = _DTYPES[signature[6]]
  calls = {}
  if dtype in ("float32", "float64"):
    a, b = (rng.standard_normal(s).astype(dtype) for s in (pa, pb))
    c = np.empty((pa[0], pa[1], pb[2]), dtype)

    def numpy_call():
      for _ in range(runs):
        np.matmul(a, b, out=c)

    calls["numpy"] = numpy_call
  try:
    import torch  # noqa: PLC0415  (optional)
  except ImportError:
    return calls
  device = "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"
  ta, tb = (torch.randn(s, dtype=getattr(torch, dtype), device=device) for s in (pa, pb))
  tc = torch.empty((pa[0], pa[1], pb[2]), dtype=ta.dtype, device=device)
  sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

  def torch_call():
    for _ in range(runs):
      torch.matmul(ta, tb, out=tc)
    sync()

  calls["torch"] = torch_call
  return calls


def measure(signatures: Sequence[tuple], *, repeats: int, blas: bool = True) -> list[dict]:
  """Median seconds of one run of each product alone, per source, interleaved per product."""
  rng = np.random.default_rng(0)
  found = []
  for signature in signatures:
    runs = runs_per_call(hlo_products.Product("", "", *signature, 1, False).flops)
    calls = xla_calls(signature, runs, rng) | (blas_calls(signature, runs, rng) if blas else {})
    samples = timing.time_interleaved(calls, repeats=repeats, warmup=1)
    found.append({name: float(np.median(times)) / runs for name, times in samples.items()})
  return found


def measure_with_flags(flags: str, signatures: Sequence[tuple], *, repeats: int) -> list[dict]:
  """:func:`measure`'s XLA rows in a fresh process whose ``XLA_FLAGS`` are ``flags``, named ``xla <flags>``.

  Raises:
    RuntimeError: the process failed (an unknown flag, say), with its last error line.
  """
  env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()}
  env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
  request = json.dumps({"signatures": signatures, "repeats": repeats})
  done = subprocess.run(
    [sys.executable, "-m", "benchmarking.roofline"], input=request, env=env, capture_output=True, text=True, timeout=900
  )
  if done.returncode != 0:
    lines = done.stderr.strip().splitlines() or ["(no output)"]
    raise RuntimeError(f"roofline_xla_flags {flags!r}: the measuring process failed: {lines[-1]}")
  return [{f"{name} {flags}": s for name, s in row.items()} for row in json.loads(done.stdout.splitlines()[-1])]


def analyze(name: str, runner: Runner, step_s: float, *, repeats: int, xla_flags: Sequence[str] = ()) -> RowRoofline:
  """The roofline of one timed row (see the module docstring).

  Raises:
    ValueError: the row has no single XLA program (``runner.hlo`` is None), or its program has no matrix product.
  """
  if runner.hlo is None:
    raise ValueError(f"roofline: row {name!r} is not one XLA program (a {runner.framework} row); name a JAX row")
  found = hlo_products.products(runner.hlo())
  known = [p for p in found if p.calls is not None]
  if not known:
    raise ValueError(f"roofline: row {name!r}'s program holds no matrix product of known count")
  profile = hlo_products.thunk_seconds(runner.call, calls=PROFILED_CALLS)
  signatures = list(dict.fromkeys(p.signature for p in known))
  seconds = measure(signatures, repeats=repeats)
  if jax.default_backend() == "cpu":
    for flags in xla_flags:
      for row, extra in zip(seconds, measure_with_flags(flags, signatures, repeats=repeats), strict=True):
        row.update(extra)
  rates = {}
  for signature, row in zip(signatures, seconds, strict=True):
    sample = next(p for p in known if p.signature == signature)
    rates[signature] = ProductRates(label(sample), signature, sample.flops, row)
  thunks = []
  for thunk in dict.fromkeys(p.thunk for p in known):
    dots = [p for p in known if p.thunk == thunk]
    floors = [p.calls * p.flops / (rates[p.signature].best[1] * 1e9) for p in dots]
    largest = max(dots, key=lambda p: p.flops)
    thunks.append(
      ThunkRoofline(
        thunk,
        tuple(label(p) for p in dots),
        largest.calls,
        largest.in_loop,
        sum(p.calls * p.flops for p in dots),
        profile.thunks.get(thunk),
        sum(floors),
        rates[largest.signature].best[0],
      )
    )
  sources = tuple(dict.fromkeys(s for r in rates.values() for s in r.seconds))
  return RowRoofline(
    name,
    step_s,
    profile.wall_s,
    sum(t.flops for t in thunks),
    sum(t.seconds or 0.0 for t in thunks),
    sum(t.floor_s for t in thunks),
    tuple(thunks),
    tuple(rates.values()),
    sources,
    len(found) - len(known),
  )


def _ms(seconds: float | None) -> str:
  return "n/a" if seconds is None else f"{seconds * 1e3:.2f}"


def markdown(case_label: str, mode: str, dtype: str, roofline: RowRoofline) -> str:
  """The roofline of one row of one case as a Markdown section."""
  r = roofline
  lines = [
    f"**{r.row}, {case_label}, {mode}, {dtype}**: {r.flops / 1e9:.2f} GFLOP in matrix products per call. "
    f"The call takes {_ms(r.step_s)} ms (the benchmark's median; {_ms(r.profiled_s)} ms while profiled), "
    f"{_ms(r.products_s)} ms of it in product thunks ({r.flops / max(r.products_s, 1e-12) / 1e9:.0f} GFLOP/s; "
    f"thunks may overlap on threads). At the best rate measured alone for each, the products take "
    f"{_ms(r.floor_s)} ms (the floor): the products run at x{r.products_s / r.floor_s:.2f} the floor, "
    f"the whole call at x{r.step_s / r.floor_s:.2f}.",
    "",
    "| thunk | products (m×k×n, b× first where batched) | runs per call | GFLOP | ms inside | GFLOP/s inside | best source | floor ms | × floor |",
    "|---|---|---|---|---|---|---|---|---|",
  ]
  for t in sorted(r.thunks, key=lambda t: -(t.seconds or 0.0)):
    ratio = "n/a" if t.seconds is None else f"{t.seconds / t.floor_s:.2f}"
    rate = "n/a" if t.gflops is None else f"{t.gflops:.0f}"
    products = ", ".join(dict.fromkeys(t.products))
    lines.append(
      f"| `{t.thunk}` | {products} | {t.calls}{' (loop)' if t.in_loop else ''} | {t.flops / 1e9:.2f} | "
      f"{_ms(t.seconds)} | {rate} | {t.best_source} | {_ms(t.floor_s)} | {ratio} |"
    )
  lines += ["", "Each product alone, GFLOP/s (median of the interleaved timed runs; best in bold):", ""]
  lines += ["| product | " + " | ".join(f"`{s}`" for s in r.sources) + " |", "|---|" + "---|" * len(r.sources)]
  for rates in r.rates:
    best = rates.best[0]
    cells = []
    for source in r.sources:
      if source not in rates.seconds:
        cells.append("n/a")
        continue
      value = f"{rates.flops / rates.seconds[source] / 1e9:.0f}"
      cells.append(f"**{value}**" if source == best else value)
    lines.append(f"| {rates.label} | " + " | ".join(cells) + " |")
  if r.unknown_trips:
    lines += ["", f"{r.unknown_trips} product(s) inside loops of unknown trip count are left out."]
  return "\n".join(lines) + "\n"


def _serve() -> None:
  """The process :func:`measure_with_flags` starts: a JSON request on stdin, the XLA rows' seconds on stdout."""
  request = json.loads(sys.stdin.read())
  signatures = [tuple(tuple(x) if isinstance(x, list) else x for x in s) for s in request["signatures"]]
  print(json.dumps(measure(signatures, repeats=request["repeats"], blas=False)))


if __name__ == "__main__":
  _serve()
