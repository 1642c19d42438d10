"""Roofline of the Pallas GRU kernel's GPU shapes: FLOPs and bytes per step and the floors they imply.

Usage (from the repository root)::

  python experiments/measure.py pallas_roofline > /tmp/roofline.md

Prints the Markdown tables of ``experiments/results/pallas_roofline.md``. Every figure is
computed from the shape and the H100 peak figures below; nothing here is measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools


@dataclasses.dataclass(frozen=True)
class Device:
  """Peak figures assumed for one NVIDIA H100 SXM5 80 GB (vendor datasheet, dense)."""

  name: str = "H100 SXM5"
  hbm_bytes_per_s: float = 3.35e12  # HBM3
  bf16_flops: float = 989e12  # tensor cores, dense
  fp32_flops: float = 67e12  # CUDA cores (an IEEE float32 dot; no TF32)
  num_sms: int = 132
  l2_bytes_per_s_per_sm: float = 120e9  # ~64 B/clock/SM at ~1.9 GHz, an estimate
  on_chip_weight_bytes: int = 128 * 1024  # the kernel's budget for loop-invariant weights (pallas_gru)


BLOCK_B = 16  # rows per kernel program, pallas_gru.BLOCK_B


def per_step(batch: int, hidden: int, inputs: int, itemsize: int) -> dict[str, float]:
  """FLOPs and compulsory HBM bytes per time step of one layer direction, forward+backward.

  Every array is counted as written once and read once; the carry, outputs and gradients
  are float32 (4 bytes); projections, residual gates and weights use ``itemsize``.
  """
  bh, bih = batch * hidden, batch * inputs * hidden
  flops_fwd = 6 * bih + 6 * bh * hidden  # input projection (one GEMM) + recurrent product
  flops_bwd = 12 * bih + 12 * bh * hidden  # dW_i, dx; dh per step, dW_h after the loop
  bytes_fwd = (
    batch * inputs * itemsize  # x read by the projection GEMM
    + 2 * 3 * bh * itemsize  # x_proj written, then read step by step by the kernel
    + 4 * bh  # outputs
    + 2 * (4 * bh + 4 * bh * itemsize)  # residuals h_prev, r, z, n, aux written (and read back)
  )
  bytes_bwd = (
    4 * bh  # output cotangent
    + 2 * 3 * 4 * bh  # gate pre-activation gradients written, read by the GEMMs
    + 3 * bh * itemsize  # dx_proj for the input-projection gradients
    + 2 * batch * inputs * 4  # x read again, dx written
  )
  return dict(flops_fwd=flops_fwd, flops_bwd=flops_bwd, bytes_fwd=bytes_fwd, bytes_bwd=bytes_bwd)


def serial_step_seconds(hidden: int, itemsize: int, dev: Device) -> tuple[float, float]:
  """Critical path of one forward step in one kernel program: its products, its weight reads.

  Returns ``(product seconds, weight-read seconds)``; the weight read is zero when the
  ``[H, 3H]`` weights fit the on-chip budget and otherwise comes from L2 every step.
  """
  flops = 2 * BLOCK_B * hidden * 3 * hidden
  per_sm = (dev.bf16_flops if itemsize == 2 else dev.fp32_flops) / dev.num_sms
  weight_bytes = 3 * hidden * hidden * itemsize
  read = 0.0 if weight_bytes <= dev.on_chip_weight_bytes else weight_bytes / dev.l2_bytes_per_s_per_sm
  return flops / per_sm, read


def main(argv=None) -> None:
  argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)  # no options; --help
  dev = Device()
  print(f"Assumed device: {dev}\n")
  print(
    "| dtype | B | H | T | GFLOP/step fwd+bwd | MB/step fwd+bwd | compute floor ms | HBM floor ms "
    "| serial fwd floor ms (products + weight reads) | weights on chip |"
  )
  print("|---|---|---|---|---|---|---|---|---|---|")
  for (dtype, itemsize), batch, hidden, steps in itertools.product(
    (("float32", 4), ("bfloat16", 2)), (16, 64, 256), (128, 256, 512), (512, 2048)
  ):
    s = per_step(batch, hidden, hidden, itemsize)  # I = H, as for a layer above the first
    flops = s["flops_fwd"] + s["flops_bwd"]
    nbytes = s["bytes_fwd"] + s["bytes_bwd"]
    peak = dev.bf16_flops if itemsize == 2 else dev.fp32_flops
    product, read = serial_step_seconds(hidden, itemsize, dev)
    programs = -(-batch // BLOCK_B)
    on_chip = 3 * hidden * hidden * itemsize <= dev.on_chip_weight_bytes
    print(
      f"| {dtype} | {batch} | {hidden} | {steps} | {flops / 1e9:.4f} | {nbytes / 1e6:.3f} "
      f"| {steps * flops / peak * 1e3:.3f} | {steps * nbytes / dev.hbm_bytes_per_s * 1e3:.3f} "
      f"| {steps * (product + read) * 1e3:.2f} ({steps * product * 1e3:.2f} + {steps * read * 1e3:.2f}), "
      f"{programs} program(s) | {'yes' if on_chip else 'no'} |"
    )


if __name__ == "__main__":
  main()
