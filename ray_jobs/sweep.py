"""Sweep controller entrypoint for the Ray Job API, run on the cluster's head node:

    ray job submit --runtime-env-json '{"env_vars": {...}}' -- python ray_jobs/sweep.py CONFIG [a.b=value ...]
        [--dry-run] [--wait] [--no-preflight] [--no-pools] [--trial-fn module:function]

CONFIG is a name under configs/sweeps/ or a path. Trials run in warm pools unless --no-pools. Re-submitting
the same command resumes the run. The
preflight (ray_jobs/preflight.py) runs first; any failed check stops the job with exit code 5.
"""

import argparse
import sys

from rlvr.sweep.cli import sweep_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="sweep config name (configs/sweeps/) or path")
    parser.add_argument("overrides", nargs="*", help="a.b.c=value overrides of the sweep config")
    parser.add_argument("--dry-run", action="store_true", help="print trials and their resources; start nothing")
    parser.add_argument(
        "--wait", action="store_true", help="wait for another controller's lease to go stale instead of refusing"
    )
    parser.add_argument("--no-preflight", action="store_true", help="start the trials without the preflight checks")
    parser.add_argument(
        "--no-pools", action="store_true", help="each trial starts its own actors (same as pools=false)"
    )
    parser.add_argument(
        "--trial-fn",
        default=None,
        help="module:function run per trial (default rlvr.trial.runner:run_trial; "
        "rlvr.sweep.smoke:smoke_trial checks a cluster without models)",
    )
    args = parser.parse_args(argv)
    overrides = args.overrides + (["pools=false"] if args.no_pools else [])
    return sweep_command(
        args.config, overrides, args.dry_run, args.wait, args.trial_fn, address="auto", preflight=not args.no_preflight
    )


if __name__ == "__main__":
    sys.exit(main())
