"""The checks `rlvr preflight` runs on one node of each type, as plain functions (a Ray task only places them).

Each check returns a `Check`: ok, FAIL or skip, with one line of detail that says what was seen and, for a
failure, what to do. Nothing here raises: a check that crashes is a failed check.
"""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from rlvr.cluster import stack
from rlvr.config.memory_plan import plan_problems

OK, FAIL, SKIP = "ok", "FAIL", "skip"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    node: str = ""


@dataclass
class ProbePlan:
    """What one node is asked to check. ``gpus``: the GPUs Ray gave the probe (up to 2 of the node's)."""

    run_dir: str
    needs: list = field(default_factory=list)
    data: list = field(default_factory=list)  # ("benchmark", BenchmarkSpec, data_dir, levels) or ("train", DataConfig)
    gpus: int = 0
    declared_gpus: float = 0.0
    allow_fake_gpus: bool = False
    skip_data_reason: str | None = None
    trials: list = field(default_factory=list)  # TrialConfigs whose memory plans must fit this node's GPUs


def _guard(name: str, fn, *args) -> Check:
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 - a crashing check is a failed check, with its error as the detail
        return Check(name, FAIL, f"{type(e).__name__}: {' '.join(str(e).split())[:400]}")


def _nvidia_smi() -> str | None:
    """Driver version and GPU names as nvidia-smi reports them, or None without a driver."""
    if shutil.which("nvidia-smi") is None:
        return None
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=driver_version,name", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return (
        out.stdout.strip().splitlines()[0]
        if out.returncode == 0 and out.stdout.strip()
        else f"nvidia-smi failed: {out.stderr.strip()[:200]}"
    )


def check_cuda(plan: ProbePlan) -> Check:
    """CUDA usable on this node's GPUs, with the wheels' CUDA major, a driver that runs it, and GPUs it supports."""
    import torch

    if plan.declared_gpus == 0:
        return Check("cuda", SKIP, "this node type has no GPUs (Ray resources: GPU 0)")
    want = stack.major(stack.WHEELS_CUDA)
    driver = _nvidia_smi()
    if torch.version.cuda is None or not torch.cuda.is_available():
        what = (
            f"torch {torch.__version__} is a CPU build"
            if torch.version.cuda is None
            else f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no usable GPU"
        )
        driver_seen = driver or "none found (no nvidia-smi)"
        seen = f"{what}; NVIDIA driver: {driver_seen}; Ray declares {plan.declared_gpus:g} GPUs here"
        if plan.allow_fake_gpus and driver is None:
            return Check("cuda", SKIP, f"{seen}: GPUs declared on a CPU node, allowed by --allow-fake-gpus")
        return Check(
            "cuda",
            FAIL,
            f"{seen}. The image's wheels need CUDA {stack.WHEELS_CUDA}: NVIDIA driver >= "
            f"{stack.MIN_DRIVER} on the host and the GPUs passed into the container",
        )
    problems = []
    if stack.major(torch.version.cuda) != want:
        problems.append(f"torch is built for CUDA {torch.version.cuda}, the pinned wheels for {stack.WHEELS_CUDA}")
    image_cuda = os.environ.get("CUDA_VERSION")
    if image_cuda and stack.major(image_cuda) != want:
        problems.append(f"the image's CUDA_VERSION is {image_cuda}, the wheels' CUDA is {stack.WHEELS_CUDA}")
    if torch.cuda.device_count() < plan.gpus:
        problems.append(f"Ray assigned {plan.gpus} GPUs, torch sees {torch.cuda.device_count()}")
    capability = torch.cuda.get_device_capability(0)
    if capability < stack.MIN_COMPUTE_CAPABILITY:
        problems.append(f"compute capability {capability[0]}.{capability[1]} is below CUDA 13's 7.5")
    gpus = f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    seen = f"{gpus}, torch CUDA {torch.version.cuda}, driver {driver}"
    return Check("cuda", FAIL if problems else OK, f"{seen}: {'; '.join(problems)}" if problems else seen)


def memory_check(trials: list, gpu_gib: float) -> Check:
    """Every trial's memory plan against GPUs of ``gpu_gib``: config validation checked it against the
    trial's declared resources.gpu_memory_gib, which a node type with smaller GPUs makes wrong."""
    planned = [t for t in trials if t.model.architecture is not None]
    if not planned:
        return Check("gpu memory", SKIP, "no trial has a memory plan (model.architecture unset)")
    failing = []
    for t in planned:
        real = t.model_copy(update={"resources": t.resources.model_copy(update={"gpu_memory_gib": gpu_gib})})
        problems = plan_problems(real)
        if problems:
            failing.append((t, problems[0]))
    if not failing:
        return Check("gpu memory", OK, f"the memory plans of {len(planned)} trial(s) fit {gpu_gib:.1f} GiB GPUs")
    first, problem = failing[0]
    declared = first.resources.gpu_memory_gib
    return Check(
        "gpu memory",
        FAIL,
        f"{len(failing)} of {len(planned)} trial(s) do not fit this node's {gpu_gib:.1f} "
        f"GiB GPUs (validated against resources.gpu_memory_gib={declared}); first, {first.name}: {problem}. "
        "Use nodes with larger GPUs, or set resources.gpu_memory_gib to this node's and fix what validation "
        "then reports",
    )


def check_gpu_memory(plan: ProbePlan, cuda: Check) -> Check:
    if cuda.status != OK:
        return Check("gpu memory", SKIP, f"CUDA is not usable here (cuda: {cuda.status})")
    import torch

    return memory_check(plan.trials, torch.cuda.get_device_properties(0).total_memory / 2**30)


def _allreduce_rank(rank: int, world: int, backend: str, init: str, out_dir: str) -> None:
    import torch
    import torch.distributed as dist

    device = torch.device("cuda", rank) if backend == "nccl" else torch.device("cpu")
    if backend == "nccl":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, init_method=init, rank=rank, world_size=world)
    x = torch.full((1 << 20,), float(rank + 1), device=device)
    dist.all_reduce(x)
    Path(out_dir, f"rank{rank}").write_text(repr(float(x.min())) + " " + repr(float(x.max())))
    dist.destroy_process_group()


def allreduce(backend: str, world: int = 2, timeout_s: float = 180.0) -> str:
    """All-reduce a 4 MiB tensor across ``world`` local processes (one GPU each for nccl); the detail line, or
    an exception when a rank fails, hangs or gets a wrong sum."""
    import multiprocessing

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    expected = world * (world + 1) / 2
    with tempfile.TemporaryDirectory(prefix="rlvr-allreduce-") as out:
        ctx = multiprocessing.get_context("spawn")
        start = time.perf_counter()
        procs = [
            ctx.Process(target=_allreduce_rank, args=(r, world, backend, f"tcp://127.0.0.1:{port}", out))
            for r in range(world)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(max(1.0, timeout_s - (time.perf_counter() - start)))
        hung = [p for p in procs if p.is_alive()]
        for p in hung:
            p.kill()
        if hung or any(p.exitcode != 0 for p in procs):
            raise RuntimeError(
                f"{backend} all-reduce of {world} ranks {'hung' if hung else 'failed'} "
                f"(exit codes {[p.exitcode for p in procs]})"
            )
        sums = {float(v) for r in range(world) for v in Path(out, f"rank{r}").read_text().split()}
        if sums != {expected}:
            raise RuntimeError(f"{backend} all-reduce gave {sorted(sums)}, expected {expected:g}")
        return f"{world} ranks summed to {expected:g} in {time.perf_counter() - start:.1f} s"


def check_nccl(plan: ProbePlan, cuda: Check) -> Check:
    if plan.gpus < 2:
        return Check("nccl", SKIP, "fewer than two GPUs on this node type: nothing to all-reduce across")
    if cuda.status != OK:
        return Check("nccl", SKIP, f"CUDA is not usable here (cuda: {cuda.status})")
    import torch

    detail = allreduce("nccl", 2)
    return Check("nccl", OK, f"{detail} on cuda:0,1 (NCCL {'.'.join(map(str, torch.cuda.nccl.version()))})")


def check_import(module: str) -> Check:
    start = time.perf_counter()
    mod = importlib.import_module(module)
    want = stack.WHEELS.get(module)
    version = getattr(mod, "__version__", "?")
    if want and not version.startswith(want):
        return Check(module, FAIL, f"{module} {version} imports, but the project pins {want}")
    return Check(module, OK, f"{module} {version} imports ({time.perf_counter() - start:.1f} s)")


def check_storage(run_dir: str) -> Check:
    """Write, read back and delete a probe object in the run's storage, with this node's own credentials."""
    # imported by each check, so a node where one import fails reports that check failed, not a preflight crash
    from rlvr.storage import RunStorage

    storage = RunStorage(run_dir)
    rel = f".preflight/{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    payload = uuid.uuid4().bytes * 64
    storage.write_bytes(rel, payload)
    back = storage.read_bytes(rel)
    storage.delete(rel)
    if back != payload:
        return Check(
            "storage",
            FAIL,
            f"{storage.uri_of(rel)}: read back {0 if back is None else len(back)} bytes, wrote {len(payload)}",
        )
    if storage.exists(rel):
        return Check("storage", FAIL, f"{storage.uri_of(rel)}: still there after delete")
    return Check("storage", OK, f"wrote, read back and deleted {storage.uri_of(rel)}")


def data_label(item: tuple) -> str:
    return f"data {item[1].name if item[0] == 'benchmark' else item[1].source}"


def check_data(item: tuple) -> Check:
    """Read a benchmark or a training set the way trials read it (data directory, or hub cache offline)."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    from rlvr.data.benchmarks import load_benchmark
    from rlvr.data.train_sets import load_train_set

    try:
        if item[0] == "benchmark":
            rows = load_benchmark(item[1], item[2], item[3])
            return Check(data_label(item), OK if rows else FAIL, f"benchmark: {len(rows)} problems")
        return Check(data_label(item), OK, f"training set: {len(load_train_set(item[1], seed=0))} prompts")
    except LocalEntryNotFoundError:
        return Check(data_label(item), FAIL, "hub dataset not in the hub cache; run `rlvr model fetch` for this sweep")


def check_weights(need) -> Check:
    from rlvr.cluster.fetch import locate

    found = locate(need, download=False)
    if found.path is not None:
        return Check(f"weights {need.name}", OK, found.detail)
    return Check(
        f"weights {need.name}",
        SKIP if need.kind == "tiny" else FAIL,
        found.detail + ("" if need.kind == "tiny" else "; run `rlvr model fetch` for this sweep"),
    )


def run_checks(plan: ProbePlan) -> list[Check]:
    """Every check of one node, in a fixed order, one Check each."""
    cuda = _guard("cuda", check_cuda, plan)
    checks = [
        cuda,
        _guard("gpu memory", check_gpu_memory, plan, cuda),
        _guard("nccl", check_nccl, plan, cuda),
        _guard("vllm", check_import, "vllm"),
        _guard("deepspeed", check_import, "deepspeed"),
        _guard("storage", check_storage, plan.run_dir),
    ]
    if plan.skip_data_reason:
        return checks + [Check("data", SKIP, plan.skip_data_reason), Check("weights", SKIP, plan.skip_data_reason)]
    checks += [_guard(data_label(item), check_data, item) for item in plan.data]
    model_needs = [n for n in plan.needs if n.kind in ("model", "tiny")]
    return checks + [_guard(f"weights {n.name}", check_weights, n) for n in model_needs]
