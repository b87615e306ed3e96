"""Study controller entrypoint for the Ray Job API, run on the cluster's head node:

    ray job submit --runtime-env-json '{"env_vars": {...}}' -- python ray_jobs/study.py STUDY [a.b=value ...]
        [--dry-run] [--trial-fn module:function]

STUDY is a name under configs/studies/ or a path. Re-submitting the same command resumes the study: every stage
is a sweep whose finished trials are never re-run.
"""

import argparse
import sys

from rlvr.study.cli import study_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="study config name (configs/studies/) or path")
    parser.add_argument("overrides", nargs="*", help="a.b.c=value overrides of the study config")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the budget (trials, time, GPU-hours); start nothing"
    )
    parser.add_argument(
        "--trial-fn", default=None, help="module:function run per trial (default rlvr.trial.runner:run_trial)"
    )
    args = parser.parse_args(argv)
    return study_command(args.config, args.overrides, args.dry_run, args.trial_fn, address="auto")


if __name__ == "__main__":
    sys.exit(main())
