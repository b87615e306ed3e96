"""The Dockerfile and the cluster configs agree with the project: image name, Python and Ray versions,
entrypoints that exist and parse their arguments, a GPU-free head, autoscaling GPU workers, token auth."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import ray
import yaml

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
IMAGE = f"rlvr/rlvr:{PYPROJECT['project']['version']}"
DOCKERFILE = (ROOT / "Dockerfile").read_text()
LAUNCHER = yaml.safe_load((ROOT / "cluster/ray-cluster.yaml").read_text())
KUBERAY = yaml.safe_load((ROOT / "cluster/kuberay.yaml").read_text())


def _pinned_ray() -> str:
    [pin] = [d for d in PYPROJECT["project"]["dependencies"] if d.startswith("ray")]
    return pin.split("==")[1]


def _kuberay_containers():
    yield from KUBERAY["spec"]["headGroupSpec"]["template"]["spec"]["containers"]
    for group in KUBERAY["spec"]["workerGroupSpecs"]:
        yield from group["template"]["spec"]["containers"]


def test_every_config_runs_the_image_the_dockerfile_builds():
    assert f"docker build -t {IMAGE} ." in DOCKERFILE
    assert LAUNCHER["docker"]["image"] == IMAGE
    assert {c["image"] for c in _kuberay_containers()} == {IMAGE}


def test_image_python_and_ray_match_pyproject():
    lowest = re.search(r">=(\d+\.\d+)", PYPROJECT["project"]["requires-python"]).group(1)
    assert re.search(r"^ARG PYTHON_VERSION=(\S+)$", DOCKERFILE, re.M).group(1) == lowest
    assert KUBERAY["spec"]["rayVersion"] == _pinned_ray() == ray.__version__
    assert 'pip install ".[gpu' in DOCKERFILE and "COPY ray_jobs" in DOCKERFILE and "COPY configs" in DOCKERFILE


def test_launcher_has_a_gpu_free_head_and_autoscaling_gpu_workers_with_auth():
    types = LAUNCHER["available_node_types"]
    head = types[LAUNCHER["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0
    workers = [t for name, t in types.items() if name != LAUNCHER["head_node_type"]]
    assert any(t["min_workers"] == 0 and t["max_workers"] > 0 and t["resources"]["GPU"] > 0 for t in workers)
    start = " ".join(LAUNCHER["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in start and "--num-gpus=0" in start
    assert "-e RAY_AUTH_MODE=token" in LAUNCHER["docker"]["run_options"]


def test_kuberay_autoscales_a_gpu_group_from_zero_with_token_auth():
    spec = KUBERAY["spec"]
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["headGroupSpec"]["rayStartParams"]["dashboard-host"] == "127.0.0.1"
    [gpu] = spec["workerGroupSpecs"]
    assert gpu["minReplicas"] == 0 and gpu["maxReplicas"] > 0
    assert all(c["resources"]["limits"]["nvidia.com/gpu"] for c in gpu["template"]["spec"]["containers"])
    for c in _kuberay_containers():
        assert {"name": "RAY_AUTH_MODE", "value": "token"} in c["env"]


def test_entrypoints_named_in_the_docs_exist_and_parse_their_arguments():
    docs = (ROOT / "docs/cluster.md").read_text()
    named = set(re.findall(r"ray_jobs/\w+\.py", docs + DOCKERFILE + (ROOT / "configs/sweeps/paper-1.5b.yaml").read_text()))
    assert {"ray_jobs/sweep.py", "ray_jobs/trial.py", "ray_jobs/evaluate.py"} <= named
    for entry in sorted(named):
        out = subprocess.run([sys.executable, str(ROOT / entry), "--help"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "usage:" in out.stdout, f"{entry}: {out.stderr[-500:]}"
