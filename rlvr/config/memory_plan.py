"""The memory plan of a trial: what each of its actors needs on its GPU, item by item, before anything starts.

Everything is arithmetic on the architecture numbers of ``configs/models/*.yaml`` (no weights, no torch), so
config validation can refuse a trial that cannot fit its GPUs and ``rlvr plan`` can print the plan anywhere.
The formulas, their assumptions and their check against measurement are in docs/memory-plan.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rlvr.config.methods import method_spec
from rlvr.config.schema import ArchitectureConfig, TrialConfig
from rlvr.config.trial_plan import MicroBatching, TrialPlan, engine_context

GIB = 2**30
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
REWARD_HOST_GIB_PER_WORKER = 0.5  # a math-verify subprocess (sympy, latex2sympy) once warm
ENGINE_RESERVE_GIB = 2.0  # vLLM's activation workspace and sampler buffers beside weights and KV cache
NCCL_CHUNKS = 3  # vLLM's two packed buffers in flight (DEFAULT_PACKED_NUM_BUFFERS) and the next one being made


@dataclass
class ActorPlan:
    """One actor of a trial: the GiB it needs per item on one GPU (host memory when ``gpu`` is False)."""

    name: str
    items: dict[str, float]
    gpu: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.items.values())


@dataclass
class MemoryPlan:
    """The actors of one trial with what each needs, its GPUs, and its estimated hours."""

    actors: list[ActorPlan]
    gpus: int
    step_seconds: float
    gpu_hours: float


def param_counts(arch: ArchitectureConfig) -> dict[str, int]:
    """Parameters of a Qwen2-style decoder by part: embedding, output head, and one decoder layer."""
    h, i, heads, kv_heads = arch.hidden_size, arch.intermediate_size, arch.num_attention_heads, arch.num_key_value_heads
    kv = h // heads * kv_heads
    layer = (h * h + h) + 2 * (h * kv + kv) + h * h + 3 * h * i + 2 * h  # q, k, v (with biases), o, MLP, 2 norms
    return {
        "embed": arch.vocab_size * h,
        "head": 0 if arch.tie_word_embeddings else arch.vocab_size * h,
        "layer": layer,
    }


def total_params(arch: ArchitectureConfig) -> int:
    c = param_counts(arch)
    return c["embed"] + c["head"] + arch.num_hidden_layers * c["layer"] + arch.hidden_size


def module_shapes(arch: ArchitectureConfig) -> dict[str, tuple[int, int]]:
    """(in, out) features of the linear layers adapters target."""
    h, i = arch.hidden_size, arch.intermediate_size
    kv = h // arch.num_attention_heads * arch.num_key_value_heads
    return {
        "q_proj": (h, h),
        "k_proj": (h, kv),
        "v_proj": (h, kv),
        "o_proj": (h, h),
        "gate_proj": (h, i),
        "up_proj": (h, i),
        "down_proj": (i, h),
    }


def trainable_params(cfg: TrialConfig) -> int:
    """Trainable parameters: all of them for full fine-tuning, else an upper bound for an adapter of the
    method's rank on its target modules (rank x (in + out) + out per module: LoRA, DoRA's magnitude, AdaLoRA's
    E; VeRA, IA3, MiSS and LN tuning train fewer)."""
    arch, method = cfg.model.architecture, cfg.method
    spec = method_spec(method.name)
    if method.name == "full":
        return total_params(arch)
    shapes = module_shapes(arch)
    targets = method.target_modules or list(shapes)
    rank = method.rank or spec.default_rank or 1
    per_layer = sum(rank * (shapes[m][0] + shapes[m][1]) + shapes[m][1] for m in targets if m in shapes)
    return per_layer * arch.num_hidden_layers + 2 * arch.hidden_size * arch.num_hidden_layers


def activation_values_per_token(arch: ArchitectureConfig, checkpointing: bool, lora_inputs: int) -> tuple[int, int]:
    """Values per token of a micro-batch: (kept for the whole backward, working set of one layer's backward).

    Per layer a Qwen2 decoder keeps ~12 h + 4 kv + 4 i values (norm inputs and their fp32 upcasts, q/k/v and
    their rotations, attention output, MLP gate/up/act/product); an adapter with dropout keeps its own input
    copy per module (``lora_inputs`` values). Checkpointing keeps only each layer's input (h) and recomputes one
    layer at a time in backward. Backward holds ~2 i + 2 h values of gradients in flight.
    """
    h, i = arch.hidden_size, arch.intermediate_size
    kv = h // arch.num_attention_heads * arch.num_key_value_heads
    layer = 12 * h + 4 * kv + 4 * i + lora_inputs
    transient = 2 * i + 2 * h
    if checkpointing:
        return arch.num_hidden_layers * h, layer + transient
    return arch.num_hidden_layers * layer, transient


def micro_batch_tokens(cfg: TrialConfig) -> int:
    """Padded tokens of the largest micro-batch: the token budget, never less than one longest sequence."""
    return MicroBatching.of(cfg.learner).largest(cfg.data.max_prompt_tokens + cfg.rollout.max_new_tokens)


def largest_tensor_bytes(cfg: TrialConfig) -> int:
    """Bytes of the largest tensor of the merged checkpoint stream (the embedding or output head, else an MLP
    weight), in the policy's dtype."""
    arch = cfg.model.architecture
    return max(arch.vocab_size, arch.intermediate_size) * arch.hidden_size * DTYPE_BYTES[cfg.model.dtype]


def transfer_buffers(cfg: TrialConfig) -> tuple[float, float]:
    """GiB that vLLM's weight transfer (rollout.weight_transfer resolving to nccl or ipc) allocates during a sync on
    (the learner's GPU, each engine GPU); (0, 0) on the bucketed path. docs/cluster.md item 6 cites the code.

    Packed in buffers of B = rollout.sync_bucket_mb (vllm distributed/weight_transfer/packed_tensor.py). NCCL:
    ``pack_tensors`` fills a chunk until it passes B, so a chunk is under B + L (L the largest tensor); the sender
    holds two chunks in flight while it concatenates the next from fresh copies, the receiver two receive buffers
    while it allocates the next one: 3 (B + L) each side. IPC (engine and learner on one GPU): the sender's one
    buffer of exactly B and the tensor being copied in, the receiver's clones of one chunk (at most B). The engine
    also materialises one module at a time to load it (model_loader/reload/layerwise.py): the largest, M, more."""
    transport = TrialPlan.from_config(cfg).transport
    if transport == "buckets":
        return 0.0, 0.0
    arch, b = cfg.model.architecture, DTYPE_BYTES[cfg.model.dtype]
    bucket, largest = cfg.rollout.sync_bucket_mb * 2**20, largest_tensor_bytes(cfg)
    module = max(largest, 2 * arch.hidden_size * arch.intermediate_size * b)  # vLLM fuses gate and up projections
    if transport == "nccl":
        return NCCL_CHUNKS * (bucket + largest) / GIB, (NCCL_CHUNKS * (bucket + largest) + module) / GIB
    return (bucket + largest) / GIB, (bucket + module) / GIB


def learner_plan(cfg: TrialConfig) -> ActorPlan:
    arch, learner = cfg.model.architecture, cfg.learner
    b = DTYPE_BYTES[cfg.model.dtype]
    n = learner.num_learners
    stage = learner.sharding_stage
    params, trainable = total_params(arch), trainable_params(cfg)
    full = trainable == params
    master = 4 if b < 4 else 0  # fp32 master weights when training in 16 bits
    tokens = micro_batch_tokens(cfg)
    shapes = module_shapes(arch)
    lora_inputs = 0
    if not full and cfg.method.dropout > 0:
        lora_inputs = sum(shapes[m][0] for m in (cfg.method.target_modules or list(shapes)) if m in shapes)
    chunk = min(learner.logits_chunk_tokens, tokens)
    kept, layer = activation_values_per_token(arch, learner.gradient_checkpointing, lora_inputs)
    # one chunk of logits in its backward: the head's output in the model's dtype and ~5 fp32 [chunk, vocabulary]
    # tensors (recomputed logits, exp(), the gather's and logsumexp's gradients, their sum), not all at once
    logits = chunk * arch.vocab_size * (b + 20) / GIB
    # the logits' backward runs first, the layers' after it: the peak is the larger of the two, not their sum
    # (checked against measurement in benchmarks/RESULTS.md)
    working = max(logits, tokens * layer * b / GIB)
    items = {
        "weights": params * b / (n if stage == 3 else 1) / GIB,
        "gradients": trainable * (b + master) / (n if stage >= 2 else 1) / GIB,
        "optimizer": trainable * (8 + master) / (n if stage >= 1 else 1) / GIB,
        "activations": tokens * kept * b / GIB,
        "working": working,
    }
    transfer = transfer_buffers(cfg)[0]
    if transfer:
        items["transfer"] = transfer  # counted on top of the step's activations, which a sync follows: an upper bound
    notes = [
        f"{trainable / 1e6:,.1f} M of {params / 1e6:,.0f} M parameters trained",
        f"{tokens:,} tokens per micro-batch",
        f"ZeRO stage {stage} over {n} rank(s)" if learner.backend == "deepspeed" else "torch backend, one rank",
        f"working: the larger of one logits chunk's backward ({logits:.2f} GiB) and one layer's backward "
        f"({tokens * layer * b / GIB:.2f} GiB)",
    ]
    return ActorPlan("learner", items, notes=notes)


def kv_bytes_per_token(arch: ArchitectureConfig, dtype_bytes: int) -> int:
    head_dim = arch.hidden_size // arch.num_attention_heads
    return 2 * arch.num_hidden_layers * arch.num_key_value_heads * head_dim * dtype_bytes


def training_sequence_gib(cfg: TrialConfig) -> float:
    """KV cache of one training sequence at its longest (prompt and completion limits)."""
    arch, b = cfg.model.architecture, DTYPE_BYTES[cfg.model.dtype]
    return kv_bytes_per_token(arch, b) * (cfg.data.max_prompt_tokens + cfg.rollout.max_new_tokens) / GIB


def sequences_fit(cfg: TrialConfig, gpu_gib: float, *beside: float) -> int:
    """Training sequences at their longest that vLLM's share of a ``gpu_gib`` GPU holds at once, beside the
    ``beside`` GiB of weights and buffers."""
    free = cfg.rollout.memory_share * gpu_gib
    for gib in beside:
        free -= gib
    return int(max(free, 0) / training_sequence_gib(cfg))


def engine_plan(cfg: TrialConfig, gpu_gib: float | None) -> ActorPlan:
    """Weights, reserve, and the KV cache of one sequence of the engine's context (what vLLM refuses to start
    without); the notes say how many sequences of the training batch fit at their longest in vLLM's share of the GPU."""
    arch, b = cfg.model.architecture, DTYPE_BYTES[cfg.model.dtype]
    per_seq = kv_bytes_per_token(arch, b) * engine_context(cfg) / GIB
    batch = cfg.algorithm.prompts_per_step * cfg.algorithm.group_size
    train_seq = training_sequence_gib(cfg)
    items = {"weights": total_params(arch) * b / GIB, "reserve": ENGINE_RESERVE_GIB, "kv_cache": per_seq}
    notes = [
        f"KV cache for the whole batch at its longest: {batch} x {train_seq:.2f} GiB = {batch * train_seq:.1f} GiB"
    ]
    if gpu_gib is not None:
        fit = sequences_fit(cfg, gpu_gib, items["weights"], items["reserve"])
        notes.append(
            f"vLLM's share {cfg.rollout.memory_share * gpu_gib:.1f} GiB holds {min(fit, batch)} of {batch} sequences "
            "at full length at once"
        )
    transfer = transfer_buffers(cfg)[1]
    if transfer:
        items["transfer"] = transfer
        notes.append(
            f"transfer: vLLM's {TrialPlan.from_config(cfg).transport} receive buffers during a sync, allocated "
            "outside vLLM's share (which its KV cache fills)"
        )
    return ActorPlan("engine", items, notes=notes)


def reward_plan(cfg: TrialConfig) -> ActorPlan:
    return ActorPlan(
        "reward",
        {"verifiers": cfg.reward.workers * REWARD_HOST_GIB_PER_WORKER},
        gpu=False,
        notes=[f"{cfg.reward.workers} math-verify subprocesses (host memory)"],
    )


def decode_seconds(cfg: TrialConfig, tenants: int = 1) -> float:
    """One step's generation for ``tenants`` trials' batches in one engine batch, bound by memory bandwidth: every
    decoding step reads the base weights once (K tenants' adapters ride along, vLLM's punica kernels) and the KV
    cache of every running sequence (half-full on average), each tenant's as a solo trial's."""
    arch, res = cfg.model.architecture, cfg.resources
    b = DTYPE_BYTES[cfg.model.dtype]
    batch = cfg.algorithm.prompts_per_step * cfg.algorithm.group_size
    completion = res.mean_completion_tokens or cfg.rollout.max_new_tokens
    context = cfg.data.max_prompt_tokens + completion
    per_engine = -(-batch // cfg.rollout.num_engines)
    read = total_params(arch) * b + tenants * per_engine * context / 2 * kv_bytes_per_token(arch, b)
    return completion * read / (res.gpu_bandwidth_tb_s * 1e12 * res.bandwidth_efficiency)


def train_seconds(cfg: TrialConfig) -> float:
    """One step's update, bound by FLOPs."""
    arch, res = cfg.model.architecture, cfg.resources
    completion = res.mean_completion_tokens or cfg.rollout.max_new_tokens
    flops_per_token = (8 if cfg.learner.gradient_checkpointing else 6) * total_params(arch)
    tokens = cfg.algorithm.prompts_per_step * cfg.algorithm.group_size * (cfg.data.max_prompt_tokens + completion)
    tokens *= cfg.algorithm.ppo_epochs
    return tokens * flops_per_token / (res.gpu_tflops * 1e12 * res.mfu * cfg.learner.num_learners)


def step_seconds(cfg: TrialConfig) -> float:
    """One RL step's time on this trial's GPUs: decoding bound by memory bandwidth, training by FLOPs."""
    return decode_seconds(cfg) + train_seconds(cfg)


def trial_gpus(cfg: TrialConfig) -> int:
    """The GPUs of the trial's placement group, as the trial plan lays it out (colocated ranks share theirs)."""
    return int(sum(b.get("GPU", 0) for b in TrialPlan.from_config(cfg).bundles(controller_cpus=1)))


def plan_trial(cfg: TrialConfig) -> MemoryPlan:
    if cfg.model.architecture is None:
        raise ValueError(f"model {cfg.model.name!r}: the memory plan needs model.architecture (see configs/models/)")
    actors = [engine_plan(cfg, cfg.resources.gpu_memory_gib), learner_plan(cfg), reward_plan(cfg)]
    seconds = step_seconds(cfg)
    gpus = trial_gpus(cfg)
    return MemoryPlan(actors, gpus, seconds, cfg.steps * seconds * gpus / 3600)


def transfer_problems(cfg: TrialConfig, prefix: str = "") -> list[str]:
    """vLLM's IPC producer refuses a tensor larger than its one buffer (packed_tensor.py, packed_ipc_producer)."""
    if TrialPlan.from_config(cfg).transport != "ipc":
        return []
    largest = largest_tensor_bytes(cfg) / 2**20
    if largest <= cfg.rollout.sync_bucket_mb:
        return []
    return [
        f"{prefix}rollout.sync_bucket_mb: {cfg.rollout.sync_bucket_mb:g} MiB is smaller than the model's largest "
        f"tensor ({largest:,.0f} MiB), which vLLM's IPC weight transfer refuses; raise it to at least "
        f"{math.ceil(largest)}"
    ]


def plan_problems(cfg: TrialConfig, prefix: str = "") -> list[str]:
    """Actors whose plan exceeds the declared GPU memory less its headroom, with the numbers; transfer buffers that
    do not fit beside vLLM's share of its GPU."""
    if cfg.model.architecture is None:
        return []
    out = transfer_problems(cfg, prefix)
    gib = cfg.resources.gpu_memory_gib
    if gib is None:
        return out
    usable = gib * (1 - cfg.resources.memory_headroom)
    share = cfg.rollout.memory_share
    outside = usable * (1 - share)  # what vLLM leaves of its GPU
    actors = plan_trial(cfg).actors
    received = next(a for a in actors if a.name == "engine").items.get("transfer", 0.0)
    for actor in actors:
        limit = usable * (share if actor.name == "engine" else 1)
        if actor.name == "learner" and cfg.rollout.colocate:
            # the sleeping engine frees its share, but the learner's weights and optimizer stay while the engine
            # runs; the engine's transfer buffers come on top, outside its share
            awake = sum(v for k, v in actor.items.items() if k not in ("activations", "working"))
            if awake + received > outside:
                also = f" (and the engine's transfer buffers {received:.1f} GiB)" if received else ""
                out.append(
                    f"{prefix}rollout.colocate: the learner keeps {awake:.1f} GiB on the GPU{also} while the engine "
                    f"takes rollout.gpu_memory_utilization {share:g} of {usable:.1f} GiB; "
                    "lower gpu_memory_utilization or give engine and learner GPUs of their own"
                )
        if actor.name == "engine" and not cfg.rollout.colocate and received > outside:
            out.append(
                f"{prefix}rollout.gpu_memory_utilization: the engine's weight-transfer buffers need {received:.1f} "
                f"GiB beside vLLM's share {share:g} of {usable:.1f} GiB, which leaves {outside:.1f}; lower "
                "gpu_memory_utilization or rollout.sync_bucket_mb"
            )
        items = {k: v for k, v in actor.items.items() if not (actor.name == "engine" and k == "transfer")}
        if actor.gpu and sum(items.values()) > limit:
            listed = ", ".join(f"{k} {v:.1f}" for k, v in items.items())
            fix = (
                "raise rollout.gpu_memory_utilization or lower eval/rollout max_new_tokens"
                if actor.name == "engine"
                else "lower learner.max_tokens_per_micro_batch, set learner.gradient_checkpointing, or raise "
                "learner.zero_stage / num_learners"
            )
            out.append(
                f"{prefix}resources.gpu_memory_gib: the {actor.name} needs {sum(items.values()):.1f} GiB ({listed}) "
                f"but {gib:g} GiB less {cfg.resources.memory_headroom:.0%} headroom leaves {limit:.1f}; {fix}"
            )
    return out
