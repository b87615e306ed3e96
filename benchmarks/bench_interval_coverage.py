"""Coverage of a nominal 95 % interval for a mean difference over n seeds: z, Student's t (the report's, rlvr.analysis
.significance) and the percentile bootstrap over seeds (what the report did before). Per-seed differences are drawn
N(effect, sd); coverage is the share of simulated studies whose interval contains the effect.

    python benchmarks/bench_interval_coverage.py [--studies 20000] [--resamples 1000]
"""

import argparse

import numpy as np

from rlvr.analysis.significance import t_mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=20000)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    effect, sd = 0.02, 0.03
    print("| seeds | z | t (n-1 df) | percentile bootstrap over seeds |")
    print("|---:|---:|---:|---:|")
    for n in (2, 3, 5, 10):
        hits = {"z": 0, "t": 0, "boot": 0}
        for _ in range(args.studies):
            d = effect + rng.normal(0, sd, n)
            tm = t_mean(d)
            low, high = tm.interval(0.95)
            hits["t"] += low <= effect <= high
            hits["z"] += abs(tm.mean - effect) <= 1.959964 * tm.se
            means = d[rng.integers(0, n, (args.resamples, n))].mean(axis=1)
            b_low, b_high = np.percentile(means, [2.5, 97.5])
            hits["boot"] += b_low <= effect <= b_high
        print(
            f"| {n} | {hits['z'] / args.studies:.3f} | {hits['t'] / args.studies:.3f} | "
            f"{hits['boot'] / args.studies:.3f} |"
        )


if __name__ == "__main__":
    main()
