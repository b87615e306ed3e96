"""One trial on the cluster, outside any sweep (no ledger, no retries), in its own placement group:

    ray job submit -- python ray_jobs/trial.py TRIAL_CONFIG TRIAL_DIR [a.b=value ...] [--trial-fn module:function]

TRIAL_CONFIG is a name under configs/trials/ or a path; TRIAL_DIR a local path or a pyarrow URI. Submitting it
again resumes from the newest checkpoint in TRIAL_DIR.
"""

import argparse
import json
import sys

from rlvr.cluster.attach import attach_or_exit
from rlvr.config.loader import load_trial
from rlvr.sweep.controller import load_trial_fn
from rlvr.sweep.scheduler import run_placed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="trial config name (configs/trials/) or path")
    parser.add_argument("trial_dir", help="where the trial writes checkpoints, metrics and evaluations")
    parser.add_argument("overrides", nargs="*", help="a.b.c=value overrides of the trial config")
    parser.add_argument("--cpus", type=float, default=1.0, help="CPUs of the trial's controller bundle")
    parser.add_argument("--trial-fn", default=None, help="module:function (default rlvr.trial.runner:run_trial)")
    args = parser.parse_args(argv)
    cfg = load_trial(args.config, args.overrides)
    attach_or_exit("auto")
    final = run_placed(cfg, args.trial_dir, load_trial_fn(args.trial_fn), args.cpus)
    print(json.dumps(final, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
