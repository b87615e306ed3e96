"""Can a rollout engine serve this PolicyUpdate? Checked before the update reaches the engine.

vLLM rejects unsupported adapters deep inside its worker, where a rejection can kill or hang the engine
(docs/platform-notes.md), so the rules it enforces are checked here first, torch- and vLLM-free, where the learner
side (the PEFT helper's export) can call them too.
"""

from __future__ import annotations

import json
import re
import struct
from typing import Any

from rlvr.config.schema import VLLM_LORA_RANKS
from rlvr.sync.update import PolicyUpdate

# init_lora_weights values that only set the initial adapter, so a trained adapter is a plain LoRA
# (vllm.lora.peft_helper); PiSSA/OLoRA/CorDA change the base and must arrive as a converted update.
_PLAIN_INITS = ("gaussian", "eva", "orthogonal", "mica", "lora_ga")
_LORA_KEY = re.compile(r"\.lora_(A|B|embedding_A|embedding_B)(\.weight)?$")
# Config features vLLM's LoRA layers do not implement: key -> how to tell it is switched on.
_UNSUPPORTED = {
    "use_dora": ("vLLM does not support DoRA; export DoRA on the merged route", bool),
    "modules_to_save": ("vLLM does not serve modules_to_save; export full modules on the merged route", bool),
    "lora_bias": ("vLLM does not support LoRA bias", bool),
    "layer_replication": ("vLLM does not support layer_replication", bool),
    "alora_invocation_tokens": ("vLLM does not support activated LoRA", bool),
    "use_qalora": ("vLLM does not support QALoRA", bool),
    "use_bdlora": ("vLLM does not support block-diagonal LoRA", bool),
    "bias": ("vLLM does not support adapter biases; set bias='none'", lambda v: v not in (None, "none")),
}


class UnservableUpdate(ValueError):
    """A PolicyUpdate that the engine cannot serve; the message lists every problem and its fix."""


def served_lora_rank(rank: int) -> int:
    """The smallest vLLM ``max_lora_rank`` that holds an adapter of ``rank``."""
    for allowed in VLLM_LORA_RANKS:
        if rank <= allowed:
            return allowed
    raise ValueError(f"max_lora_rank: {rank} exceeds vLLM's largest allowed rank {max(VLLM_LORA_RANKS)}")


def safetensors_shapes(data: bytes) -> dict[str, list[int]]:
    """Tensor names and shapes in safetensors bytes, read from the header without loading any tensor."""
    if len(data) < 8:
        raise UnservableUpdate("lora_tensors: not safetensors bytes (shorter than the 8-byte header length)")
    (size,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8 : 8 + size])
    except ValueError as e:
        raise UnservableUpdate(f"lora_tensors: not safetensors bytes ({e})") from e
    return {k: v["shape"] for k, v in header.items() if k != "__metadata__"}


def _route_problems(update: PolicyUpdate) -> list[str]:
    p = []
    if (update.lora_tensors is None) != (update.lora_config is None):
        p.append("lora_tensors and lora_config: both or neither must be set")
    if update.route in ("native", "converted") and not update.has_adapter:
        p.append(f"route {update.route!r} needs lora_tensors and lora_config")
    if update.route == "native" and update.base_weights is not None:
        p.append("base_weights: the native route never changes the base; use the converted route for a residual base")
    if update.route == "merged" and (update.has_adapter or update.base_weights is None):
        p.append("route 'merged' needs base_weights and no adapter")
    return p


def _config_problems(config: dict[str, Any], max_lora_rank: int | None) -> list[str]:
    p = []
    peft_type = str(config.get("peft_type", "LORA")).rsplit(".", 1)[-1]
    if peft_type != "LORA":
        p.append(f"lora_config.peft_type: {peft_type!r} is not LORA; convert it or use the merged route")
    for key in ("r", "lora_alpha", "target_modules"):
        if config.get(key) is None:
            p.append(f"lora_config.{key}: missing (use peft's LoraConfig.to_dict())")
    for key, (why, is_on) in _UNSUPPORTED.items():
        if is_on(config.get(key)):
            p.append(f"lora_config.{key}: {config[key]!r}: {why}")
    init = config.get("init_lora_weights", True)
    if isinstance(init, str) and init.lower() not in _PLAIN_INITS:
        p.append(
            f"lora_config.init_lora_weights: {init!r} changes the base; push the residual base as base_weights "
            "and export the adapter with init_lora_weights=True"
        )
    ranks = [config.get("r") or 0, *(config.get("rank_pattern") or {}).values()]
    if max_lora_rank is None:
        p.append("max_lora_rank: the engine was started without LoRA; start it with the method's rank")
    elif max(ranks) > max_lora_rank:
        p.append(f"lora_config.r: rank {max(ranks)} exceeds the engine's max_lora_rank {max_lora_rank}")
    return p


def _tensor_problems(shapes: dict[str, list[int]], max_lora_rank: int | None) -> list[str]:
    p = [] if shapes else ["lora_tensors: no tensors (was the adapter merged or unloaded before export?)"]
    extra = [k for k in shapes if not _LORA_KEY.search(k)]
    if extra:
        p.append(f"lora_tensors: {len(extra)} non-LoRA tensor(s) such as {extra[:3]}; vLLM serves lora_A/lora_B only")
    # A rank that disagrees with the config would only fail when vLLM copies it into a slot, mid-generation.
    rank_of = {k: shape[0] if ".lora_A" in k or "embedding_A" in k else shape[-1] for k, shape in shapes.items()}
    too_big = [k for k, r in rank_of.items() if max_lora_rank is not None and r > max_lora_rank]
    if too_big:
        p.append(
            f"lora_tensors: {too_big[0]} has rank {rank_of[too_big[0]]} above the engine's max_lora_rank "
            f"{max_lora_rank}"
        )
    return p


def check_servable(update: PolicyUpdate, max_lora_rank: int | None) -> None:
    """Raise UnservableUpdate unless an engine with this ``max_lora_rank`` (None: no LoRA) can serve ``update``."""
    problems = _route_problems(update)
    if update.lora_config is not None:
        problems += _config_problems(update.lora_config, max_lora_rank)
    if update.lora_tensors is not None:
        problems += _tensor_problems(safetensors_shapes(update.lora_tensors), max_lora_rank)
    if problems:
        raise UnservableUpdate(
            f"policy v{update.version} ({update.route}) cannot be served:\n  " + "\n  ".join(problems)
        )
