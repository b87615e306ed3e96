"""Expected failures as one paragraph (what failed, what to change); a traceback only with -v."""

import os
import subprocess
import sys

import ray

from rlvr.errors import explain
from rlvr.sync.probe import StaleEngineError


def _ray_wrapped(err: BaseException) -> BaseException:
    try:
        raise err
    except BaseException as e:
        import traceback

        wrapped = ray.exceptions.RayTaskError("run_trial", traceback.format_exc(), e)
    return wrapped.as_instanceof_cause()


def test_a_stale_engine_inside_rays_wrapper_is_one_paragraph_naming_the_setting():
    err = _ray_wrapped(StaleEngineError("policy v3: engine log-probs differ from the learner's by up to 0.07"))
    text = explain(err, "runs/x/trials/abc/trial.log")
    lines = text.splitlines()
    assert lines[0] == "error: StaleEngineError: policy v3: engine log-probs differ from the learner's by up to 0.07"
    assert "rollout.probe_tolerance" in text and "runs/x/trials/abc/trial.log" in text and "-v" in text
    assert "Traceback" not in text and len(lines) == 3


def test_a_ledger_line_gets_its_hint():
    from rlvr.errors import hint_for

    assert "rollout.probe_tolerance" in hint_for("StaleEngineError: policy v0: engine log-probs differ")
    assert hint_for("RuntimeError: learner died") is None


def test_unexpected_errors_are_not_explained():
    assert explain(ZeroDivisionError("x")) is None
    assert explain(_ray_wrapped(KeyError("k"))) is None


def test_a_chained_adapter_rejection_names_the_sync_route():
    from rlvr.rollout.vllm_engine import AdapterRejected

    try:
        try:
            raise ValueError("vLLM does not yet support DoRA")
        except ValueError as inner:
            raise AdapterRejected("policy v1 (native): vLLM rejected the update: ValueError: ...") from inner
    except AdapterRejected as e:
        text = explain(e)
    assert text.startswith("error: AdapterRejected: policy v1") and "rollout.sync_route: merged" in text


def _rlvr(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "COLUMNS": "80"}
    return subprocess.run(
        [sys.executable, "-m", "rlvr.cli", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_a_config_error_prints_the_field_and_no_traceback_unless_verbose():
    out = _rlvr("config", "show", "trial", "demo-cpu", "algorithm.lr=-1")
    assert out.returncode == 2
    assert out.stderr.startswith("error: ConfigError:") and "algorithm.lr" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.splitlines()) <= 4
    verbose = _rlvr("-v", "config", "show", "trial", "demo-cpu", "algorithm.lr=-1")
    assert verbose.returncode != 0 and ("Traceback" in verbose.stderr or "╭" in verbose.stderr)
