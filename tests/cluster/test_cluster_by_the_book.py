"""What a GPU cluster user would hit first, checked against the cluster files and the lock: rsync in the image
for the launcher's docker copies, a CUDA-13 capable AMI, GPUs as large as the study's validation assumes (and a
preflight that compares each trial's memory plan with the GPUs a node really has), the autoscaler sidecar's auth
token, and one wheel shipping cuda.bindings. docs/cluster.md, "What a first GPU run would hit", has the sources."""

from __future__ import annotations

import re
from pathlib import Path

from rlvr.cluster.probe import FAIL, OK, memory_check
from rlvr.config.grid import expand
from rlvr.config.loader import load_sweep, load_trial

from ..test_packaging import DOCKERFILE, DOCS, KUBERAY, LAUNCHER, ROOT, _final_stage, _kuberay_containers

# Datasheet GPUs of the EC2 types a cluster file may name: (count, GiB CUDA reports for one GPU).
EC2_GPUS = {
    "p5en.48xlarge": (8, 140.4),
    "p5e.48xlarge": (8, 140.4),
    "p5.48xlarge": (8, 79.6),
    "p4de.24xlarge": (8, 79.2),
    "p4d.24xlarge": (8, 39.4),
}


def _study_gib() -> float:
    return load_trial("study").resources.gpu_memory_gib


def test_the_runtime_stage_has_rsync_which_the_launcher_runs_inside_the_container():
    # ray autoscaler/_private/command_runner.py: DockerCommandRunner.run_rsync_up runs rsync -e 'docker exec -i'
    runtime = _final_stage().replace("\\\n", " ")
    assert re.search(r"apt-get install [^\n]*\brsync\b", runtime)


def test_every_launcher_node_names_an_ami_and_the_docs_name_the_flag_the_launcher_adds():
    # Without ImageId, ray autoscaler/_private/aws/config.py falls back to its DEFAULT_AMI (a CUDA 11 era DLAMI).
    for name, node in LAUNCHER["available_node_types"].items():
        assert node["node_config"].get("ImageId"), f"{name}: no ImageId"
    assert "base-oss-nvidia-driver-gpu-ubuntu-22.04" in (ROOT / "cluster/ray-cluster.yaml").read_text()
    assert "--runtime=nvidia" in DOCS and "--gpus all" not in DOCS


def test_gpu_nodes_have_the_gpus_the_study_validates_every_trial_against():
    for name, node in LAUNCHER["available_node_types"].items():
        if not node["resources"].get("GPU"):
            continue
        count, gib = EC2_GPUS[node["node_config"]["InstanceType"]]
        assert node["resources"]["GPU"] == count, (
            f"{name}: Ray declares {node['resources']['GPU']} GPUs, the instance has {count}"
        )
        assert gib >= _study_gib(), f"{name}: {gib} GiB GPUs, study.yaml validates against {_study_gib()}"
    [gpu] = KUBERAY["spec"]["workerGroupSpecs"]
    assert gpu["template"]["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H200"} and _study_gib() <= 140


def test_preflight_fails_a_sweep_whose_plans_do_not_fit_the_nodes_real_gpus():
    trials = [s.config for s in expand(load_sweep("paper-1.5b"))]
    on_a100 = memory_check(trials, EC2_GPUS["p4d.24xlarge"][1])
    assert on_a100.status == FAIL and "full" in on_a100.detail and "resources.gpu_memory_gib=139" in on_a100.detail
    on_h200 = memory_check(trials, EC2_GPUS["p5en.48xlarge"][1])
    assert on_h200.status == OK and f"{len(trials)} trial(s)" in on_h200.detail


def test_the_kuberay_autoscaler_sidecar_gets_the_token_the_ray_containers_get():
    def token_env(env):
        return {e["name"]: e.get("value", e.get("valueFrom")) for e in env if e["name"].startswith("RAY_AUTH")}

    sidecar = token_env(KUBERAY["spec"]["autoscalerOptions"]["env"])
    for container in _kuberay_containers():
        assert token_env(container["env"]) == sidecar, container["name"]
    assert sidecar["RAY_AUTH_MODE"] == "token" and "secretKeyRef" in sidecar["RAY_AUTH_TOKEN"]


# KubeRay's AutoscalerOptions (ray-operator/apis/ray/v1/raycluster_types.go; docs.ray.io "KubeRay CRD API reference"):
# env is a list of core/v1 EnvVar (valueFrom.secretKeyRef allowed), so the sidecar can read the token from a secret.
AUTOSCALER_OPTIONS = {
    "resources",
    "image",
    "imagePullPolicy",
    "securityContext",
    "idleTimeoutSeconds",
    "upscalingMode",
    "version",
    "env",
    "envFrom",
    "volumeMounts",
}


def test_the_kuberay_autoscaler_options_are_fields_kuberay_defines_and_name_the_documented_secret():
    options = KUBERAY["spec"]["autoscalerOptions"]
    assert set(options) <= AUTOSCALER_OPTIONS, set(options) - AUTOSCALER_OPTIONS
    assert options["upscalingMode"] in {"Default", "Aggressive", "Conservative"}
    for var in options["env"]:
        assert set(var) <= {"name", "value", "valueFrom"} and ("value" in var) != ("valueFrom" in var), var
    (ref,) = [v["valueFrom"]["secretKeyRef"] for v in options["env"] if "valueFrom" in v]
    # the secret docs/cluster.md tells the user to create, under the same key
    assert f"kubectl create secret generic {ref['name']} --from-literal={ref['key']}=" in DOCS


def test_one_wheel_of_the_gpu_lock_ships_cuda_bindings_and_the_image_imports_it_with_flashinfer():
    # cuda-python 12.6.2.post1 is monolithic (its own cuda/bindings); >= 13 it is a metapackage over cuda-bindings.
    lock = Path(ROOT / "requirements/gpu.lock").read_text()
    pins = dict(re.findall(r"^([a-z0-9_.-]+)==(\S+) ", lock, re.M))
    assert "cuda-bindings" in pins and "flashinfer-python" in pins
    assert "cuda-python" not in pins or int(pins["cuda-python"].split(".")[0]) >= 13
    assert 'python -c "from cuda.bindings import driver; import flashinfer"' in DOCKERFILE
