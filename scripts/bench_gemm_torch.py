#!/usr/bin/python3
"""PyTorch reference for `gotrain bench gemm`: the same shapes and ops,
printing the same JSON line, so the two can be compared in one run.

  /usr/bin/python3 scripts/bench_gemm_torch.py --m 128 --n 4864 --k 896 \
      --weights bf16 --compute bf16 --op t --threads 2

op t:  y[m×n]  = x[m×k] · wᵀ   (torch.matmul(x, w.t()), what nn.Linear runs)
op n:  dx[m×k] = dy[m×n] · w
op tn: dw[n×k] = dyᵀ · x       (float32 only)
--weights bf16 --compute f32 widens w to float32 inside the timed call (as a
model keeping bf16 weights would); --compute bf16 multiplies bf16 operands
(autocast style) and rounds x to bf16 inside the timed call.
"""
import argparse
import json
import statistics
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--m", type=int, default=128)
    ap.add_argument("--n", type=int, default=896)
    ap.add_argument("--k", type=int, default=896)
    ap.add_argument("--weights", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--compute", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--op", choices=["t", "n", "tn"], default="t")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--time", type=float, default=1.0, help="minimum measuring time, seconds")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    m, n, k = a.m, a.n, a.k
    w = torch.randn(n, k)
    if a.weights == "bf16" or a.compute == "bf16":
        w = w.bfloat16()
    if a.op == "t":
        x = torch.randn(m, k)
        if a.compute == "bf16":
            f = lambda: torch.matmul(x.bfloat16(), w.t())
        elif a.weights == "bf16":
            f = lambda: torch.matmul(x, w.float().t())
        else:
            y = torch.empty(m, n)
            f = lambda: torch.matmul(x, w.t(), out=y)
    elif a.op == "n":
        dy = torch.randn(m, n)
        if a.compute == "bf16":
            f = lambda: torch.matmul(dy.bfloat16(), w)
        elif a.weights == "bf16":
            f = lambda: torch.matmul(dy, w.float())
        else:
            dx = torch.empty(m, k)
            f = lambda: torch.matmul(dy, w, out=dx)
    else:
        if a.weights != "f32" or a.compute != "f32":
            raise SystemExit("--op tn takes float32 operands only")
        dy, x, dw = torch.randn(m, n), torch.randn(m, k), torch.empty(n, k)
        f = lambda: torch.matmul(dy.t(), x, out=dw)
    with torch.no_grad():
        f()
        ts = []
        start, c0 = time.perf_counter(), time.process_time()
        while len(ts) < 3 or time.perf_counter() - start < a.time:
            t0 = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t0)
        cpu = (time.process_time() - c0) / len(ts)
    ts.sort()
    flops = 2.0 * m * n * k
    wbytes = n * k * (2 if a.weights == "bf16" else 4)
    print(json.dumps({
        "bench": "gemm", "op": a.op, "m": m, "n": n, "k": k,
        "weights": a.weights, "compute": a.compute,
        "threads": a.threads, "level": "torch-" + torch.__version__,
        "seconds": ts[0],
        "gflops": flops / ts[0] / 1e9,
        "median_gflops": flops / statistics.median(ts) / 1e9,
        "cpu_gflops": flops / (cpu / a.threads) / 1e9 if cpu > 0 else 0,
        "weight_gbps": wbytes / ts[0] / 1e9,
        "reps": len(ts),
        "implementation": "pytorch",
    }))


if __name__ == "__main__":
    main()
