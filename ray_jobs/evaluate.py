"""Benchmark evaluation on the cluster: rlvr.eval's ``eval_command`` in a Ray task holding the GPUs it needs.

ray job submit -- python ray_jobs/evaluate.py MODEL OUT [--adapter DIR] [--benchmarks aime24 math500]
    [--k 32] [--limit N] [--engine vllm] [--gpus 1]
"""

import argparse
import sys

import ray

from rlvr.cluster.attach import attach_or_exit
from rlvr.eval.cli import eval_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="hub name or path of the base model")
    parser.add_argument("out", help="directory (or URI) that receives eval/step_<step>/")
    parser.add_argument("--adapter", default=None, help="trained adapter directory, merged onto the base in fp32")
    parser.add_argument("--benchmarks", nargs="+", default=["aime24", "aime25", "amc23", "math500", "minerva_math"])
    parser.add_argument("--k", type=int, default=None, help="samples per problem; default each benchmark's own")
    parser.add_argument("--limit", type=int, default=None, help="first N problems of each benchmark")
    parser.add_argument("--engine", default="vllm", choices=["vllm", "hf"])
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="default the study's 31,744, capped to what the model's context leaves",
    )
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--step", type=int, default=0, help="step the adapter was saved at (names the output folder)")
    parser.add_argument("--gpus", type=float, default=1, help="GPUs of the evaluation task (0 runs on CPUs)")
    args = parser.parse_args(argv)
    attach_or_exit("auto")
    task = ray.remote(num_gpus=args.gpus, max_retries=0)(eval_command)
    summary = ray.get(
        task.remote(
            args.model,
            args.adapter,
            args.benchmarks,
            args.k,
            args.limit,
            args.engine,
            args.out,
            max_new_tokens=args.max_new_tokens,
            data_dir=args.data_dir,
            step=args.step,
        )
    )
    print(summary.to_pandas().to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
