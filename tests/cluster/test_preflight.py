"""`rlvr preflight` on this machine's local Ray: one line per check, GPU checks skipped with the reason on a node
without GPUs, failures for what a sweep lacks (weights not fetched, no GPU node), and the sweep command that
runs the preflight first and starts nothing when it fails. The two-node cluster case is in
tests/sweep/test_cluster_jobs.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rlvr.cluster.preflight import report, run_preflight
from rlvr.cluster.probe import allreduce
from rlvr.config.grid import expand
from rlvr.config.loader import load_sweep
from rlvr.sweep.cli import EXIT_FAILED, EXIT_PREFLIGHT, preflight_command, sweep_command
from rlvr.sweep.controller import run_dir


def _by_name(checks):
    return {c.name: c for c in checks}


def test_allreduce_sums_across_two_processes_over_gloo():
    # The code path the nccl check takes on two GPUs, here over gloo on the CPU.
    assert allreduce("gloo", 2, timeout_s=120).startswith("2 ranks summed to 3")


@pytest.mark.slow
def test_demo_sweep_passes_on_the_local_ray_with_gpu_checks_skipped(local_ray, tmp_path):
    cfg = load_sweep("demo-cpu", [f"storage={tmp_path}"])
    checks = run_preflight(cfg, [s.config for s in expand(cfg)], run_dir(cfg))
    lines, ok = report(checks)
    assert ok, "\n".join(lines)
    assert len({c.node for c in checks}) == 1
    named = _by_name(checks)
    assert named["cuda"].status == "skip" and "no GPUs" in named["cuda"].detail
    assert named["nccl"].status == "skip" and "fewer than two GPUs" in named["nccl"].detail
    assert named["gpu memory"].status == "skip" and "CUDA is not usable" in named["gpu memory"].detail
    assert named["vllm"].status == "ok" and named["deepspeed"].status == "ok"
    assert named["storage"].status == "ok" and "deleted" in named["storage"].detail
    assert not list(Path(tmp_path).rglob(".preflight/*")), "the storage probe object was left behind"
    assert named["weights tiny-qwen2"].status in ("ok", "skip")
    assert lines[-1].startswith("preflight: ") and lines[-1].endswith(" 0 failed")


@pytest.mark.slow
def test_paper_sweep_fails_on_unfetched_weights_and_on_no_gpu_node(local_ray, tmp_path, capsys):
    code = preflight_command("paper-1.5b", [f"storage={tmp_path}", "autoscale=false"])
    out = capsys.readouterr().out
    assert code == EXIT_FAILED, out
    lines = out.splitlines()
    fails = [line for line in lines if line.startswith("FAIL")]
    assert any(
        "weights deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B" in line and "rlvr model fetch" in line for line in fails
    ), out
    assert any("data open-r1/DAPO-Math-17k-Processed" in line and "rlvr model fetch" in line for line in fails), out
    assert not any(line.startswith("An error happened") for line in lines), "a check's detail spans lines"
    assert any("gpu nodes" in line and "autoscale is off" in line for line in fails), out
    assert any(line.startswith("ok") and "data aime24" in line and "30 problems" in line for line in lines), out
    # With autoscale on, a GPU node is asked for; none comes on this machine, and the wait is bounded.
    cfg = load_sweep("paper-1.5b", [f"storage={tmp_path}"])
    checks = run_preflight(cfg, [s.config for s in expand(cfg)][:1], run_dir(cfg), node_timeout_s=3)
    assert any(c.node == "new GPU node" and c.status == "FAIL" and "no GPU node came up" in c.detail for c in checks)


@pytest.mark.slow
def test_sweep_runs_the_preflight_first_and_starts_nothing_when_it_fails(local_ray, tmp_path, capsys):
    sweep = tmp_path / "unfetched.yaml"
    sweep.write_text(
        yaml.safe_dump(
            {
                "name": "unfetched",
                "storage": str(tmp_path / "runs"),
                "base": {"steps": 2, "checkpoint": {"every_steps": 2}, "model": {"name": "org/never-fetched"}},
            }
        )
    )
    assert sweep_command(str(sweep)) == EXIT_PREFLIGHT
    assert "FAIL" in capsys.readouterr().out
    assert not (tmp_path / "runs" / "unfetched" / "ledger").exists(), "a trial was scheduled after a failed preflight"
