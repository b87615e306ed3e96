"""An actor Ray placed on GPUs must be able to use them.

vLLM picks its platform and the learner its device from ``torch.cuda.is_available()``; when the driver is
too old for the wheels' CUDA both quietly run on CPU, hours slower, on a node whose GPUs sit idle.
"""

from __future__ import annotations


def require_cuda(role: str, gpus_field: str) -> None:
    """Raise if Ray assigned this actor GPUs that torch cannot see (call first in an actor's setup)."""
    import ray
    import torch

    assigned = ray.get_gpu_ids()
    if assigned and not torch.cuda.is_available():
        raise RuntimeError(
            f"{role}: Ray assigned GPU(s) {assigned} ({gpus_field}) but torch.cuda.is_available() is False in this "
            f"actor (torch {torch.__version__}, built for CUDA {torch.version.cuda}); it would silently run on CPU. "
            f"Install a driver that supports CUDA {torch.version.cuda} (check nvidia-smi) or wheels built for the "
            f"driver's CUDA, or set {gpus_field}: 0 to run on CPU"
        )
