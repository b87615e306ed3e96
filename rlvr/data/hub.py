"""Hub datasets through the hub cache: one snapshot per dataset, shared by every node of a cluster.

`rlvr model fetch` downloads the snapshot once; trials run with HF_HUB_OFFLINE=1 and read it from the cache
(huggingface_hub resolves the name to the cached snapshot without asking the hub). The rows are then read
from that local folder by `datasets`, exactly as a load by hub name would read them.
"""

from __future__ import annotations

from pathlib import Path


def snapshot_dir(
    name: str,
    repo_type: str = "dataset",
    revision: str | None = None,
    allow_patterns=None,
    local_files_only: bool = False,
) -> str:
    """The local folder of a hub repository: the cached snapshot (offline), else downloaded into the cache. A
    local folder given as the name stands for a repository, as it does for ``datasets.load_dataset``."""
    import huggingface_hub

    if Path(name).is_dir():
        return name

    return huggingface_hub.snapshot_download(
        name, repo_type=repo_type, revision=revision, allow_patterns=allow_patterns, local_files_only=local_files_only
    )


def load_hub_dataset(name: str, config: str | None = None, split: str | None = None):
    """``datasets.load_dataset`` of a hub dataset's snapshot (a DatasetDict without ``split``)."""
    import datasets

    return datasets.load_dataset(snapshot_dir(name), config, split=split)
