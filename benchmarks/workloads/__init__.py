"""The workloads: what each one computes, written twice.

A workload is a `Workload` record holding
  make_inputs(rng) -> (params, consts): float32 NumPy arrays on the host; `params`
      are differentiated (gradients are checked and timed), `consts` are not
      (labels, fixed factors);
  numpy_impl(xp, params, consts) -> (loss, grads): forward AND backward written by
      hand against the array namespace `xp` (numpy or cupy), no graph. It is the
      speed limit for a NumPy-backed library, and run in float64 it is the
      reference every implementation's gradients are checked against;
  forward(F, params, consts) -> scalar loss: written once for every autodiff
      library (gradkit, torch, HIPS autograd); `F` is the namespace adapter from
      benchmarks/frameworks.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    unit: str                 # unit of the reported time
    per_step: float           # multiply seconds per step by this to get `unit`
    make_inputs: Callable
    numpy_impl: Callable
    forward: Callable
    lr: float | None = None   # SGD step inside the timed step (W2)
    repeat: int = 15          # timed samples by default (--quick: 3)
    min_sample_s: float = 0.1   # each sample loops the step at least this long (--quick: /5)
    min_bytes: Callable | None = None  # theoretical minimum peak memory (W3)
    notes: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()   # layers `forward` calls on F beyond the basics (W6: conv2d)


def all_workloads() -> dict[str, Workload]:
    from benchmarks.workloads import (w1_overhead, w2_mlp, w3_memory, w4_transformer,
                                      w5_broadcast, w6_convnet)
    from benchmarks.workloads import w7_lstm
    ws = [*w1_overhead.WORKLOADS, w2_mlp.WORKLOAD, w3_memory.WORKLOAD,
          w4_transformer.WORKLOAD, w4_transformer.WORKLOAD_ELEMENTARY, w5_broadcast.WORKLOAD, w6_convnet.WORKLOAD]
    ws.append(w7_lstm.WORKLOAD)
    return {w.name: w for w in ws}


def select(only: str | None) -> list[Workload]:
    """`--only W1,W3`: a name selects itself and its variants (W1 -> W1, W1-1)."""
    ws = all_workloads()
    if not only:
        return list(ws.values())
    wanted = [s.strip().upper() for s in only.split(",") if s.strip()]
    unknown = [s for s in wanted if not any(n == s or n.startswith(s + "-") for n in ws)]
    if unknown:
        raise SystemExit(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(ws)}")
    return [w for n, w in ws.items() if any(n == s or n.startswith(s + "-") for s in wanted)]
