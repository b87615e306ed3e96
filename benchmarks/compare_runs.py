"""Two run directories of the same sweep, trial by trial: metrics.jsonl (less timings) and the newest checkpoint's
trainable weights compared exactly (what bench_pool_independence.py compares, for runs made by other commands, such
as `make demo` with and without tenancy).

    PYTHONPATH=. .venv/bin/python benchmarks/compare_runs.py RUN_A RUN_B    # e.g. runs/demo-cpu in two clones

Exit status 1 if any trial present in both differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench_pool_independence import metrics, newest_weights


def main(a: Path, b: Path) -> int:
    differ = 0
    for trial in sorted((b / "trials").iterdir()):
        other = a / "trials" / trial.name
        if not other.is_dir():
            continue
        (step_a, wa), (step_b, wb) = newest_weights(other), newest_weights(trial)
        same = metrics(other) == metrics(trial) and step_a == step_b and wa.keys() == wb.keys()
        same = same and all(wa[k].equal(wb[k]) for k in wa)
        differ += not same
        print(f"{trial.name} {'identical' if same else 'DIFFERS'} ({step_b})")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
