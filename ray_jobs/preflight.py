"""Preflight of a sweep for the Ray Job API, before it spends GPU-hours:

    ray job submit -- python ray_jobs/preflight.py SWEEP [a.b=value ...] [--node-timeout S] [--allow-fake-gpus]

On one node of every node type (and on a GPU node the autoscaler brings up if none runs): CUDA usable and
matching the wheels, an NCCL all-reduce across two GPUs, vLLM and DeepSpeed import, the run's storage
writable, benchmarks and training data readable, model weights in the shared cache. One line per check; exit
code 1 when any check fails. ray_jobs/sweep.py runs the same checks first unless given --no-preflight.
"""

import argparse
import sys

from rlvr.sweep.cli import preflight_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="sweep config name (configs/sweeps/) or path")
    parser.add_argument(
        "overrides", nargs="*", help="a.b.c=value overrides of the sweep config (storage=... above all)"
    )
    parser.add_argument(
        "--node-timeout",
        type=float,
        default=900.0,
        help="seconds to wait for each node type's checks (a GPU node the autoscaler starts takes minutes)",
    )
    parser.add_argument(
        "--allow-fake-gpus",
        action="store_true",
        help="GPUs that Ray declares on a node without an "
        "NVIDIA driver are skipped, not failed (CPU rehearsals of a GPU cluster)",
    )
    parser.add_argument(
        "--trial-fn",
        default=None,
        help="the trial function the sweep will run; other than the study trial, data and weights are not checked",
    )
    args = parser.parse_args(argv)
    return preflight_command(
        args.config, args.overrides, "auto", args.allow_fake_gpus, args.node_timeout, args.trial_fn
    )


if __name__ == "__main__":
    sys.exit(main())
