"""`rlvr eval --trial`: a trial checkpoint is evaluated as the policy the trial trained."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest


@pytest.mark.slow
def test_eval_of_a_trial_checkpoint_writes_tables(uninterrupted, tmp_path):
    from rlvr.eval.cli import eval_command

    summary = eval_command(
        model="unused",
        adapter=None,
        benchmarks=["synthetic:addition"],
        k=2,
        limit=8,
        engine="hf",
        out=str(tmp_path),
        max_new_tokens=12,
        reward_workers=1,
        trial=str(uninterrupted),
    )
    assert summary.column("benchmark").to_pylist() == ["synthetic:addition", "average"]
    # the newest checkpoint (step 4) is what was evaluated, and the step names the output folder
    samples = pq.read_table(tmp_path / "eval" / "step_000004" / "samples.parquet")
    assert samples.num_rows == 16 and set(samples.column("step").to_pylist()) == {4}


@pytest.mark.slow
def test_eval_of_a_missing_checkpoint_lists_the_ones_there(uninterrupted, tmp_path):
    from rlvr.eval.cli import eval_command

    with pytest.raises(FileNotFoundError, match=r"no checkpoint at step 3; checkpoints: \[2, 4\]"):
        eval_command(
            model="unused",
            adapter=None,
            benchmarks=["synthetic:addition"],
            k=1,
            limit=1,
            engine="hf",
            out=str(tmp_path),
            trial=str(uninterrupted),
            trial_step=3,
        )
