#!/usr/bin/env python3
"""A projection, not a measurement: data-parallel step time and scaling efficiency against the
number of nodes N, from a step's measured compute time on one node and its gradient bytes.

    scripts/project_scaling.py --model lstm --compute-s 1.73 --grad-mb 19.24 [--batch 64]

Model (the usual one for synchronous data parallelism, e.g. Sergeev & Del Balso 2018):
  - ring allreduce of G bytes over N nodes: 2 (N-1)/N * G / bandwidth + 2 (N-1) * latency;
  - weak scaling: each node keeps its batch of --batch reviews (the global batch grows with N),
    so a step's compute time stays the one measured on one node; an epoch of --corpus reviews
    takes corpus / (batch N) steps;
  - a step takes compute + (1 - hidden) * allreduce, where --hidden is the share of the
    allreduce that overlapping it with the backward pass hides (measured on one machine: the
    allreduce's time per step against the step's wait after its backward pass; 0: none).
Efficiency is the one-node step time over the N-node step time (weak scaling: 1.0 is perfect).
Latencies: 30 us per message at 10 Gb/s (TCP), 5 us at 100 Gb/s (RDMA), overridable.
"""
import argparse


def ring_allreduce_s(grad_bytes, n, gbps, latency_s):
    if n == 1:
        return 0.0
    return 2 * (n - 1) / n * grad_bytes / (gbps * 1e9 / 8) + 2 * (n - 1) * latency_s


def duration(s):
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 60:
        return f"{s / 60:.0f} min"
    return f"{s:.0f} s"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--compute-s", type=float, required=True, help="one step's compute on one node (s)")
    p.add_argument("--grad-mb", type=float, required=True, help="gradient megabytes (1e6) per step")
    p.add_argument("--batch", type=int, default=64, help="reviews per node per step")
    p.add_argument("--corpus", type=int, default=3_600_000, help="reviews per epoch (Amazon polarity: 3.6 M)")
    p.add_argument("--hidden", type=float, default=0.0,
                   help="share of the allreduce hidden behind the backward pass (0: none)")
    p.add_argument("--nodes", default="1,2,4,8,16,32")
    args = p.parse_args()
    nodes = [int(x) for x in args.nodes.split(",")]
    links = [(10, 30e-6), (100, 5e-6)]
    g = args.grad_mb * 1e6
    print(f"### {args.model}: {args.compute_s:.3f} s compute per step of {args.batch} reviews, "
          f"{args.grad_mb:.2f} MB of gradients, {args.hidden:.0%} of the allreduce hidden (projection)")
    print()
    print("| nodes | " + " | ".join(f"{b} Gb/s: allreduce ms, step s, efficiency" for b, _ in links) +
          " | epoch of %.1f M reviews at %d Gb/s |" % (args.corpus / 1e6, links[0][0]))
    print("|---:|" + "---:|" * (len(links) + 1))
    for n in nodes:
        cells = []
        for gbps, lat in links:
            ar = ring_allreduce_s(g, n, gbps, lat)
            step = args.compute_s + (1 - args.hidden) * ar
            cells.append(f"{ar * 1e3:.1f}, {step:.3f}, {args.compute_s / step:.0%}")
        steps = args.corpus / (args.batch * n)
        epoch = steps * (args.compute_s + (1 - args.hidden) * ring_allreduce_s(g, n, *links[0]))
        print(f"| {n} | " + " | ".join(cells) + f" | {duration(epoch)} |")


if __name__ == "__main__":
    main()
