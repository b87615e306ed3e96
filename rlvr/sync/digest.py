"""One digest of a model's weights, so a warm pool can prove a part is back on the pristine base at a lease.

It hashes every tensor's name, dtype, shape and bytes (sha256): exact, and about a second per GB on a host core,
which a lease pays once per part (docs/architecture.md, warm pools).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping


def weights_digest(tensors: Mapping[str, torch.Tensor] | Iterable[tuple[str, torch.Tensor]]) -> str:  # noqa: F821
    import torch

    items = tensors.items() if isinstance(tensors, Mapping) else tensors
    h = hashlib.sha256()
    for name, t in sorted(items, key=lambda kv: kv[0]):
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()
