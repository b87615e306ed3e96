"""A trial's policy exported on the cluster: rlvr.export's ``export_command`` in a Ray task, reading the trial and
writing the export on any pyarrow filesystem (s3://, gs://, a shared path):

    ray job submit -- python ray_jobs/export.py TRIAL_DIR OUT --format adapter|merged [--step N] [--gpus 1]
"""

import argparse
import sys

import ray

from rlvr.cluster.attach import attach_or_exit
from rlvr.export.command import export_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trial_dir", help="trial directory or URI (<run>/trials/<id>)")
    parser.add_argument("out", help="new directory or URI that receives the export")
    parser.add_argument("--format", required=True, choices=["adapter", "merged"])
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the newest complete one)")
    parser.add_argument("--no-vllm", action="store_true", help="skip the check of an adapter served by vLLM")
    parser.add_argument("--gpus", type=float, default=0, help="GPUs of the export task (vLLM's check uses one)")
    args = parser.parse_args(argv)
    attach_or_exit("auto")
    task = ray.remote(num_gpus=args.gpus, max_retries=0)(export_command)
    result = ray.get(task.remote(args.trial_dir, args.out, args.format, args.step, vllm=not args.no_vllm))
    print(
        f"wrote {result.format} of step {result.step} to {result.out}: "
        + ", ".join(f"{c.loader} gap {c.gap:.2g}" for c in result.checks)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
