"""A catalogue of injected sync bugs, and a short training loop that serves each one after every sync.

Each bug turns the update the learner just exported into what a broken sync would leave the engine serving.
The probe must flag every one (tests/sync/test_probe_catalogue.py; benchmarks/bench_probe.py runs it longer).
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors.torch import load, save

from rlvr.sync.update import PolicyUpdate

ADAPTER_ROUTES = ("native", "converted")
ALL_ROUTES = ("native", "converted", "merged")


@dataclass(frozen=True)
class SyncBug:
    name: str
    routes: tuple[str, ...]
    # (right update, the previous right update, pristine base tensors) -> what the engine gets; None: nothing,
    # the engine keeps serving the previous version
    corrupt: Callable[[PolicyUpdate, PolicyUpdate | None, dict[str, torch.Tensor]], PolicyUpdate | None]
    # the engine misses (part of) the last step rather than a share of the whole update since the base: it can
    # be seen only once the learner moved measurably since the previous sync
    stale: bool = False


def _map_tensors(update: PolicyUpdate, fn: Callable[[str, torch.Tensor], torch.Tensor]) -> PolicyUpdate:
    """``update`` with ``fn(name, tensor)`` applied to its adapter (adapter routes) or its weights (merged)."""
    field = "base_weights" if update.route == "merged" else "lora_tensors"
    tensors = load(getattr(update, field))
    return replace(update, **{field: save({k: fn(k, v).contiguous() for k, v in tensors.items()})})


def _toward_base(base: dict[str, torch.Tensor], factor: float, match: Callable[[str], bool]):
    """Scale a tensor's change from the pristine base by ``factor`` (adapter: lora_B; merged: the weight)."""

    def fn(name: str, t: torch.Tensor) -> torch.Tensor:
        if not match(name):
            return t
        if name in base:  # merged route: HF weight names
            b = base[name].float()
            return (b + factor * (t.float() - b)).to(t.dtype)
        return (t.float() * factor).to(t.dtype) if "lora_B" in name else t

    return fn


def scaled(factor: float) -> SyncBug:
    return SyncBug(
        f"scale x{factor:g}",
        ALL_ROUTES,
        lambda u, prev, base: _map_tensors(u, _toward_base(base, factor, lambda n: True)),
    )


def module_missing(module: str) -> SyncBug:
    return SyncBug(
        f"{module} missing",
        ALL_ROUTES,
        lambda u, prev, base: _map_tensors(u, _toward_base(base, 0.0, lambda n: f".{module}." in n)),
    )


def _rslora_flipped(u: PolicyUpdate, prev, base) -> PolicyUpdate:
    return replace(u, lora_config={**u.lora_config, "use_rslora": not u.lora_config.get("use_rslora", False)})


def _stale_layer(layer: int):
    def corrupt(u: PolicyUpdate, prev: PolicyUpdate | None, base) -> PolicyUpdate:
        before = load(prev.base_weights) if prev is not None else {}
        pattern = re.compile(rf"\blayers\.{layer}\.")
        return _map_tensors(u, lambda n, t: before.get(n, base[n].to(t.dtype)) if pattern.search(n) else t)

    return corrupt


CATALOGUE = [
    scaled(0.5),
    scaled(0.8),
    scaled(2.0),
    module_missing("v_proj"),
    module_missing("down_proj"),
    SyncBug("base only", ALL_ROUTES, lambda u, prev, base: _map_tensors(u, _toward_base(base, 0.0, lambda n: True))),
    SyncBug("use_rslora flipped", ADAPTER_ROUTES, _rslora_flipped),
    SyncBug("stale version", ALL_ROUTES, lambda u, prev, base: None, stale=True),
    SyncBug("layer 1 stale", ("merged",), _stale_layer(1), stale=True),
]


def pristine_base(model_dir: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    out = {}
    for f in sorted(Path(model_dir).glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def probe_trial(cfg, steps: int, bugs=CATALOGUE, on_sync=None) -> list[dict]:
    """Train ``steps`` steps of ``cfg``'s learner on the engine's own samples (random 0/1 rewards: the size of
    the update is what matters) and after every sync score the probe with the engine serving each bug, then
    the right policy. One row per sync: version, the learner's log-probs, the engine's for the right policy
    and per bug; ``on_sync(row)`` sees each as it comes."""
    from rlvr.config.trial_plan import TrialPlan
    from rlvr.learner.batch import RolloutBatch
    from rlvr.learner.learner import Learner
    from rlvr.learner.spec import LearnerSpec
    from rlvr.models.loading import load_tokenizer, resolve_model_path
    from rlvr.rollout.spec import EngineSpec
    from rlvr.rollout.types import SamplingSpec
    from rlvr.rollout.vllm_engine import VLLMEngine
    from rlvr.sync.probe import probe_sequence

    plan = TrialPlan.from_config(cfg)
    path = resolve_model_path(cfg.model)
    tok = load_tokenizer(cfg.model, path)
    learner = Learner(LearnerSpec.from_trial(cfg, plan), path)
    engine = VLLMEngine(path, EngineSpec.from_trial(cfg, plan), cfg.seed)
    base = pristine_base(engine._model_dir())
    bugs = [b for b in bugs if plan.route in b.routes]
    prompt, completion = probe_sequence(tok, cfg.rollout.probe_tokens)
    rng = random.Random(cfg.seed)
    n_prompts = cfg.algorithm.prompts_per_step
    prompts = [tok.encode(f"{rng.randint(10, 99)}+{rng.randint(10, 99)}=") for _ in range(n_prompts)]
    previous, rows = None, []
    try:
        for version in range(steps + 1):
            update = learner.export(version, include_base=version == 0)
            want = learner.logprobs(prompt, completion)
            wrong = {bug.name: bug.corrupt(update, previous, base) for bug in bugs} if version else {}
            # the engine still serves the previous version: score the bugs that send nothing first
            by_bug = {name: engine.score(prompt, completion) for name, u in wrong.items() if u is None}
            for name, u in wrong.items():
                if u is not None:  # every update is whole (an adapter, or every changed weight): no reload between
                    engine.load_policy(u)
                    by_bug[name] = engine.score(prompt, completion)
            engine.load_policy(update)
            right = engine.score(prompt, completion)
            rows.append({"version": version, "learner": want, "right": right, "bugs": by_bug})
            if on_sync is not None:
                on_sync(rows[-1])
            previous = update
            if version == steps:
                break
            spec = SamplingSpec(n=cfg.algorithm.group_size, max_new_tokens=16, seed=version)
            groups = engine.generate(prompts, spec)
            ids, comps, lps, adv = [], [], [], []
            for p, group in zip(prompts, groups):
                rewards = [float(rng.random() < 0.5) for _ in group]
                mean = sum(rewards) / len(rewards)
                for c, r in zip(group, rewards):
                    ids.append(p), comps.append(c.token_ids), lps.append(c.logprobs), adv.append(r - mean)
            learner.train_step(RolloutBatch(ids, comps, lps, adv, [True] * len(ids)))
    finally:
        engine.close()
    return rows


def judge(rows: list[dict], limits) -> dict[str, dict[int, str | None]]:
    """Replay the probe over ``rows``: per name (the right policy, each bug) and version, None where the probe
    passed it, else its error. A bug is judged as if served at that sync after the right previous syncs."""
    from rlvr.sync.probe import StaleEngineError, SyncProbe

    def verdict(probe, scores, row):
        try:
            probe.check([scores], row["learner"], row["version"])
        except StaleEngineError as e:
            return str(e)
        return None

    out = {"right": {}}
    probe = SyncProbe(limits)
    for row in rows:
        for bug, scores in row["bugs"].items():
            out.setdefault(bug, {})[row["version"]] = verdict(copy.deepcopy(probe), scores, row)
        out["right"][row["version"]] = verdict(probe, row["right"], row)
    return out


def _right_statistics(rows: list[dict], limits) -> list[dict[str, float]]:
    """SyncProbe.statistics of the right policy at every sync."""
    from rlvr.sync.probe import SyncProbe

    probe, stats = SyncProbe(limits), []
    for row in rows:
        stats.append(probe.statistics([row["right"]], row["learner"]))
        probe.check([row["right"]], row["learner"], row["version"])
    return stats


def measurable(rows: list[dict], limits) -> dict[str, list[int]]:
    """Per bug, the versions at which the learner moved measurably for it: its probe log-probs changed by at
    least ``limits.snr`` noise floors since the first sync (``limits.step_snr`` since the previous one for a
    stale bug), as the probe measures the right policy's. The probe must flag the bug at every one of them."""
    stats = _right_statistics(rows, limits)
    return {
        bug.name: [
            r["version"]
            for r, s in zip(rows[1:], stats[1:])
            if (s["step_moved"] >= limits.step_snr if bug.stale else s["moved"] >= limits.snr)
        ]
        for bug in CATALOGUE
    }


def report(rows: list[dict], limits) -> str:
    """The right policy's statistics per sync (the calibration) and which syncs flagged each bug."""
    stats = _right_statistics(rows, limits)
    lines = [
        f"right {key}: " + " ".join(f"{s.get(key, float('nan')):.3f}" for s in stats)
        for key in ("gap", "floor", "slope", "step_slope")
    ]
    lines += [
        f"learner {key} (floors): " + " ".join(f"{s.get(key, float('nan')):.1f}" for s in stats)
        for key in ("moved", "step_moved")
    ]
    due = measurable(rows, limits)
    for name, verdicts in judge(rows, limits).items():
        line = " ".join(("F" if verdicts[v] else ".") + ("*" if v in due.get(name, ()) else " ") for v in verdicts)
        lines.append(f"{name:20s} {line}")
    lines.append("(per sync from the first: F flagged, . passed; * the learner had moved measurably for that bug)")
    return "\n".join(lines)
