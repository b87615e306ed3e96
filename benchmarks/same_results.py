"""Does a change to the trial path move results? Run short fp32 trials with two checkouts and compare them.

    # with each checkout's rlvr on PYTHONPATH, from that checkout's root:
    RLVR_DATA_DIR=/work/shared/data PYTHONPATH=$PWD .venv/bin/python benchmarks/same_results.py run OUT [labels]
    # a checkout resuming the step-2 checkpoints BASE's run wrote (BASE/{plain,async}):
    RLVR_DATA_DIR=... PYTHONPATH=$PWD .venv/bin/python benchmarks/same_results.py cross BASE OUT
    python benchmarks/same_results.py compare BASE NEW

``run`` drives the small trial of tests/trial (demo-cpu, 4 steps, 4 prompts x 4 samples, checkpoints at 2 and 4)
in variants that exercise the controller: uninterrupted, a 2-step run then the full one on its directory (resume),
async rollouts (uninterrupted and resumed), dynamic sampling (with and without empty batches) and periodic
evaluation. ``compare`` compares each trial's metrics.jsonl rows without the timing fields, every checkpoint's
trainable.safetensors and every evaluation parquet file, byte for byte; ``cross`` checks that a checkout resumes
another's checkpoints to that checkout's uninterrupted result. Exit status 1 when anything differs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

SMALL_TRIAL = Path(__file__).resolve().parents[1] / "tests" / "trial"
ASYNC = "algorithm.async_rollout=true"
RUNS = {  # label -> the overrides of each run_trial call on the same directory, in order
    "plain": [[]],
    "resume": [["steps=2"], []],
    "async": [[ASYNC]],
    "async_resume": [[ASYNC, "steps=3", "checkpoint.every_steps=1"], [ASYNC, "checkpoint.every_steps=1"]],
    "dynamic": [["algorithm.dynamic_sampling=true", "algorithm.max_resample_rounds=1"]],
    "eval": [["eval.benchmarks=[{name: 'synthetic:addition', k: 2, limit: 4}]", "eval.every_steps=3"]],
    # a cold sampler makes whole batches of uniform groups, so some step keeps none: the empty-batch case
    "dynamic_empty": [
        ["algorithm.dynamic_sampling=true", "algorithm.max_resample_rounds=0", "rollout.temperature=0.1"]
    ],
}
TIMING = {"time", "tokens_per_s"}


def _trial(overrides: list[str]):
    from rlvr.config.loader import load_trial

    sys.path.insert(0, str(SMALL_TRIAL))
    from trial_helpers import SMALL

    return load_trial("demo-cpu", [*SMALL, *overrides])


def _rows(trial_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (trial_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in m.items() if k not in TIMING and not k.startswith("t_")} for m in rows]


def _files(trial_dir: Path) -> dict[str, str]:
    found = [*trial_dir.glob("checkpoints/*/trainable.safetensors"), *trial_dir.glob("eval/**/*.parquet")]
    return {str(f.relative_to(trial_dir)): hashlib.sha256(f.read_bytes()).hexdigest() for f in found}


def run(out: Path, labels: list[str]) -> None:
    from rlvr.trial.local_ray import init_local_ray
    from rlvr.trial.runner import run_trial

    init_local_ray()
    for label in labels:
        for overrides in RUNS[label]:
            run_trial(_trial(overrides), str(out / label))
        print(label, "done", flush=True)


def compare(base: Path, new: Path) -> bool:
    same_all = True
    for d in sorted(p for p in base.iterdir() if p.is_dir()):
        other = new / d.name
        rows_same = other.exists() and _rows(d) == _rows(other)
        files, other_files = _files(d), _files(other) if other.exists() else {}
        differ = sorted(k for k in files.keys() | other_files.keys() if files.get(k) != other_files.get(k))
        print(
            f"{d.name}: {len(_rows(d))} metric rows {'identical' if rows_same else 'DIFFER'}; {len(files)} "
            f"weight/eval files {'identical' if not differ else f'DIFFER: {differ}'}"
        )
        same_all &= rows_same and not differ
    print("ALL IDENTICAL" if same_all else "SOME DIFFER")
    return same_all


def cross(base: Path, out: Path) -> bool:
    from rlvr.trial.local_ray import init_local_ray
    from rlvr.trial.runner import run_trial

    init_local_ray()
    same_all = True
    for label in ("plain", "async"):
        d = out / f"cross_{label}"
        shutil.copytree(base / label, d)
        shutil.rmtree(d / "checkpoints" / "step_000004")
        run_trial(_trial(RUNS[label][0]), str(d))
        last = "checkpoints/step_000004/trainable.safetensors"
        same = _rows(d) == _rows(base / label) and _files(d)[last] == _files(base / label)[last]
        print(f"{label}: resumed from the other checkout's step-2 checkpoint: {'identical' if same else 'DIFFERENT'}")
        same_all &= same
    return same_all


def main() -> None:
    command, *args = sys.argv[1:]
    if command == "run":
        run(Path(args[0]), args[1].split(",") if len(args) > 1 else list(RUNS))
    elif command == "compare":
        sys.exit(0 if compare(Path(args[0]), Path(args[1])) else 1)
    elif command == "cross":
        sys.exit(0 if cross(Path(args[0]), Path(args[1])) else 1)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
