"""What one trial asks of the cluster: the bundles of its placement group, as its plan lays them out
(rlvr.config.trial_plan: the controller's bundle, then one per rollout engine, learner rank and reward actor, so the
actors the trial creates land inside its group).
"""

from __future__ import annotations

from collections import Counter

from rlvr.config.schema import TrialConfig
from rlvr.config.trial_plan import TrialPlan


def trial_bundles(cfg: TrialConfig, cpus_per_trial: float) -> list[dict[str, float]]:
    return TrialPlan.from_config(cfg).bundles(cpus_per_trial)


def total(bundles: list[dict[str, float]]) -> dict[str, float]:
    """Resources summed over bundles: what the trial takes from the cluster while it runs."""
    out: Counter[str] = Counter()
    for b in bundles:
        out.update(b)
    return dict(out)


def describe(bundles: list[dict[str, float]]) -> str:
    """Short human form, e.g. ``4 CPU, 2 GPU in 4 bundles``."""
    t = total(bundles)
    parts = [f"{t[k]:g} {k}" for k in ("CPU", "GPU") if k in t]
    return f"{', '.join(parts)} in {len(bundles)} bundles"


def unplaceable(bundles: list[dict[str, float]], nodes: list[dict[str, float]], strategy: str = "PACK") -> str | None:
    """Why a trial can never be placed on these nodes (each node's total resources), or None if it can.

    A bundle must fit one node and the trial must fit the cluster as a whole (under STRICT_PACK, one node:
    engines and learners then sync over the node's own links); the finer packing is left to Ray.
    """
    for b in bundles:
        if not any(all(node.get(k, 0) >= v for k, v in b.items()) for node in nodes):
            return f"no node has a bundle of {b}"
    need = total(bundles)
    if strategy == "STRICT_PACK":
        if not any(all(node.get(k, 0) >= v for k, v in need.items()) for node in nodes):
            return (
                f"it needs {need} on one node (placement STRICT_PACK) and no node has that; "
                "set placement: PACK to span nodes"
            )
        return None
    have = total(nodes)
    short = {k: v for k, v in need.items() if have.get(k, 0) < v}
    return (
        f"it needs {need} and the cluster has {{{', '.join(f'{k!r}: {have.get(k, 0)}' for k in short)}}}"
        if short
        else None
    )
