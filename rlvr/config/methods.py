"""The PEFT method table: one data entry per method, and the facts config validation needs from it.

Torch-free (the config layer): validation, the trial plan and the sweep controller ask about methods on any machine;
``rlvr.peft_methods`` builds, trains and exports them from the same entries. Adding a method is adding a
``MethodSpec`` to ``SPECS`` (and a preset + a test), touching nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rlvr.config.schema import MethodConfig

Route = Literal["native", "converted", "merged"]
"""How an inference engine is fed a method's policy: native LoRA, converted to LoRA, or merged weights."""


@dataclass(frozen=True)
class MethodInfo:
    """Torch-free facts about a method: what config validation and `rlvr methods` need."""

    name: str
    group: str  # baseline, structural, efficiency, svd_init, ablation, other, extra
    route: Route  # how an inference engine is fed: native LoRA, converted to LoRA, or merged weights
    has_rank: bool
    options: frozenset[str] = frozenset()  # keys allowed in MethodConfig.options
    description: str = ""
    zero_stages: tuple[int, ...] = (0, 1, 2, 3)  # DeepSpeed ZeRO stages it trains under; () means torch learner only
    swapped_reference: bool = False  # its KL reference swaps the original weights in (full FT, PiSSA, MiLoRA, OLoRA)


@dataclass(frozen=True)
class MethodSpec:
    """How one method is built from a MethodConfig, trained, and fed to an inference engine.

    ``config_class`` is the peft config class (None: no adapter, full fine-tuning); ``rank_key``,
    ``alpha_key`` and ``dropout_key`` name the peft kwargs that MethodConfig.rank/alpha/dropout map to;
    ``fixed`` holds the kwargs that define the method (``use_dora=True``) and are verified on the built model;
    ``options`` are the extra peft kwargs a config may set, ``policy_options`` those the policy consumes itself.
    """

    name: str
    group: str
    description: str
    config_class: str | None
    rank_key: str | None = None
    alpha_key: str | None = None
    dropout_key: str | None = None
    default_rank: int | None = None
    alpha_per_rank: float | None = None  # default alpha = this * rank
    fixed: dict[str, Any] = field(default_factory=dict)
    options: frozenset[str] = frozenset()
    policy_options: dict[str, Any] = field(default_factory=dict)  # name -> default
    optimizer: Literal["adamw", "loraplus", "lorafa"] = "adamw"
    init: Literal["peft", "milora"] = "peft"
    lora_form: Literal["lora", "adalora"] | None = None  # which LoRA the trained adapter is, if any
    residual_init: bool = False  # the init moves W to W - B0 A0, so engines need the residual base
    lora_fold: Literal["vera", "peft"] | None = None  # no LoRA, but an update of rank <= r that becomes one exactly:
    # VeRA's factors with its vectors folded in, or peft's convert_to_lora (MiSS: its summation matrix is A)
    not_low_rank: str = ""  # why its trained policy is no low-rank delta on the original weights (adapter export)
    allowed_ranks: tuple[int, ...] | None = None
    even_rank: bool = False

    @property
    def has_rank(self) -> bool:
        return self.rank_key is not None

    @property
    def is_full_finetuning(self) -> bool:
        """No adapter: every weight of the model trains."""
        return self.config_class is None

    @property
    def route(self) -> Route:
        return route_for(self)

    @property
    def zero_stages(self) -> tuple[int, ...]:
        """DeepSpeed ZeRO stages the method trains under (measured): AdaLoRA's update_and_allocate reads
        p.grad, which DeepSpeed clears inside its step; LoRA-FA's optimizer needs unflattened parameters."""
        if self.lora_form == "adalora":
            return ()
        if self.optimizer == "lorafa":
            return (0,)
        return (0, 1, 2, 3)


def route_for(spec: MethodSpec) -> Route:
    """The one place deciding how an engine is fed: plain LoRA ships as is, other LoRAs convert, the rest merge."""
    if spec.lora_form is None:
        return "merged"
    if spec.residual_init or spec.lora_form != "lora":
        return "converted"
    return "native"


_LORA = dict(
    config_class="LoraConfig",
    rank_key="r",
    alpha_key="lora_alpha",
    dropout_key="lora_dropout",
    default_rank=16,
    alpha_per_rank=2.0,
    lora_form="lora",
)

SPECS: tuple[MethodSpec, ...] = (
    MethodSpec(
        "full",
        "baseline",
        "full fine-tuning of every weight (own learning rate)",
        None,
        not_low_rank="full fine-tuning changes every weight at full rank",
    ),
    MethodSpec("lora", "baseline", "LoRA", **_LORA),
    MethodSpec(
        "dora",
        "structural",
        "DoRA: LoRA direction + learned magnitude",
        **{**_LORA, "lora_form": None},
        fixed={"use_dora": True},
        not_low_rank="DoRA rescales every column of W + BA by a learned magnitude, which no additive "
        "low-rank delta expresses (and vLLM does not serve DoRA)",
    ),
    MethodSpec(
        "adalora",
        "structural",
        "AdaLoRA: SVD-form LoRA with budgeted rank reallocation",
        config_class="AdaLoraConfig",
        rank_key="init_r",
        alpha_key="lora_alpha",
        dropout_key="lora_dropout",
        default_rank=32,
        alpha_per_rank=2.0,
        lora_form="adalora",
        options=frozenset({"target_r", "tinit", "tfinal", "deltaT", "beta1", "beta2", "orth_reg_weight"}),
    ),
    MethodSpec(
        "miss",
        "structural",
        "MiSS: shard-shared matrix adaptation",
        config_class="MissConfig",
        rank_key="r",
        dropout_key="miss_dropout",
        default_rank=64,
        options=frozenset({"mini_r", "init_weights"}),
        lora_fold="peft",
    ),
    MethodSpec(
        "pissa",
        "svd_init",
        "PiSSA: LoRA on the top-r singular triplets, residual base",
        **_LORA,
        fixed={"init_lora_weights": "pissa_niter_4"},
        residual_init=True,
    ),
    MethodSpec(
        "milora",
        "svd_init",
        "MiLoRA: LoRA on the bottom-r singular triplets, residual base",
        **_LORA,
        init="milora",
        residual_init=True,
    ),
    MethodSpec(
        "lora_plus",
        "efficiency",
        "LoRA+: B learns loraplus_lr_ratio times faster than A",
        **_LORA,
        optimizer="loraplus",
        policy_options={"loraplus_lr_ratio": 16.0},
    ),
    MethodSpec("rslora", "efficiency", "rsLoRA: scaling alpha / sqrt(r)", **_LORA, fixed={"use_rslora": True}),
    MethodSpec("lora_fa", "efficiency", "LoRA-FA: A frozen at init, only B trained", **_LORA, optimizer="lorafa"),
    MethodSpec(
        "vera",
        "efficiency",
        "VeRA: shared frozen random projections, trained scaling vectors",
        config_class="VeraConfig",
        rank_key="r",
        dropout_key="vera_dropout",
        default_rank=256,
        options=frozenset({"d_initial", "projection_prng_key"}),
        lora_fold="vera",
    ),
    MethodSpec(
        "ia3",
        "other",
        "IA3: learned rescaling vectors",
        config_class="IA3Config",
        options=frozenset({"feedforward_modules"}),
        not_low_rank="IA3 multiplies W by learned vectors: the update W (diag(l) - I) has full rank",
    ),
    MethodSpec(
        "ln_tuning",
        "other",
        "LN tuning: train the layer-norm weights",
        config_class="LNTuningConfig",
        not_low_rank="LN tuning trains layer-norm weights, which a LoRA adapter of linear layers cannot hold",
    ),
    MethodSpec("lora_rank1", "ablation", "LoRA at rank 1", **{**_LORA, "default_rank": 1}, allowed_ranks=(1,)),
    MethodSpec(
        "olora",
        "extra",
        "OLoRA: LoRA initialised from a QR of W, residual base",
        **_LORA,
        fixed={"init_lora_weights": "olora"},
        residual_init=True,
    ),
    MethodSpec(
        "oft",
        "extra",
        "OFT: block-diagonal orthogonal rotation (rank = number of blocks)",
        config_class="OFTConfig",
        rank_key="r",
        dropout_key="module_dropout",
        default_rank=8,
        fixed={"oft_block_size": 0},
        options=frozenset({"coft", "eps", "block_share", "use_cayley_neumann"}),
    ),
    MethodSpec(
        "boft",
        "extra",
        "BOFT: butterfly-factorised orthogonal rotation",
        config_class="BOFTConfig",
        dropout_key="boft_dropout",
        options=frozenset({"boft_block_size", "boft_block_num", "boft_n_butterfly_factor"}),
    ),
    MethodSpec(
        "hra",
        "extra",
        "HRA: chain of r Householder reflections",
        config_class="HRAConfig",
        rank_key="r",
        default_rank=8,
        even_rank=True,
        options=frozenset({"apply_GS"}),
    ),
    MethodSpec(
        "loha",
        "extra",
        "LoHa: Hadamard product of two low-rank factors",
        config_class="LoHaConfig",
        rank_key="r",
        alpha_key="alpha",
        dropout_key="module_dropout",
        default_rank=8,
        alpha_per_rank=1.0,
        options=frozenset({"rank_dropout"}),
    ),
    MethodSpec(
        "lokr",
        "extra",
        "LoKr: Kronecker product with a low-rank factor",
        config_class="LoKrConfig",
        rank_key="r",
        alpha_key="alpha",
        dropout_key="module_dropout",
        default_rank=8,
        alpha_per_rank=1.0,
        options=frozenset({"rank_dropout", "decompose_both", "decompose_factor"}),
    ),
    MethodSpec(
        "fourierft",
        "extra",
        "FourierFT: learned sparse spectral coefficients",
        config_class="FourierFTConfig",
        options=frozenset({"n_frequency", "scaling", "random_loc_seed"}),
    ),
    MethodSpec(
        "randlora",
        "extra",
        "RandLoRA: full-rank update from shared random bases",
        config_class="RandLoraConfig",
        rank_key="r",
        alpha_key="randlora_alpha",
        dropout_key="randlora_dropout",
        default_rank=32,
        alpha_per_rank=20.0,
        options=frozenset({"sparse", "very_sparse", "projection_prng_key"}),
    ),
    MethodSpec(
        "road",
        "extra",
        "RoAd: learned 2D rotations of output pairs",
        config_class="RoadConfig",
        options=frozenset({"variant", "group_size"}),
    ),
    MethodSpec(
        "delora",
        "extra",
        "DeLoRA: normalised low-rank update with bounded norm",
        config_class="DeloraConfig",
        rank_key="r",
        alpha_key="delora_lambda",
        dropout_key="module_dropout",
        default_rank=8,
        alpha_per_rank=None,
    ),
    MethodSpec(
        "shira",
        "extra",
        "SHiRA: sparse high-rank update on a random mask",
        config_class="ShiraConfig",
        rank_key="r",
        default_rank=32,
        options=frozenset({"mask_type", "random_seed"}),
    ),
)
_BY_NAME = {s.name: s for s in SPECS}


def method_names() -> list[str]:
    return [s.name for s in SPECS]


def method_spec(name: str) -> MethodSpec:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"name: {name!r} is not a known method; allowed: {', '.join(method_names())}") from None


def method_info(name: str) -> MethodInfo:
    s = method_spec(name)
    return MethodInfo(
        name=s.name,
        group=s.group,
        route=s.route,
        has_rank=s.has_rank,
        options=s.options | frozenset(s.policy_options),
        description=s.description,
        zero_stages=s.zero_stages,
        swapped_reference=s.residual_init or s.is_full_finetuning,
    )


def adapter_refusal(cfg: MethodConfig) -> str | None:
    """Why this method's trained policy cannot be a plain LoRA adapter on the ORIGINAL base, or None when it can:
    every LoRA (PiSSA/MiLoRA/OLoRA as rank 2r, [B, -B0][A; A0]), AdaLoRA (P diag(E) Q), VeRA and MiSS."""
    s = method_spec(cfg.name)
    if s.name == "miss" and cfg.options.get("init_weights") == "bat":
        return "MiSS's 'bat' form adds a delta computed from W itself, which is not low-rank"
    if s.lora_form is not None or s.lora_fold is not None:
        return None
    return s.not_low_rank or "its update W' - W is not a low-rank delta on the original weights"


def check_method_config(cfg: MethodConfig) -> list[str]:
    """Problems of a method section as 'field: value ... allowed ...' (fields relative to the section)."""
    s = method_spec(cfg.name)
    p: list[str] = []
    if cfg.rank is not None and not s.has_rank:
        p.append(f"rank: {cfg.rank} is not allowed for {s.name}, which has no rank; remove it")
    if s.allowed_ranks and cfg.rank is not None and cfg.rank not in s.allowed_ranks:
        p.append(f"rank: {cfg.rank} is not allowed for {s.name}; allowed: {', '.join(map(str, s.allowed_ranks))}")
    if s.even_rank and cfg.rank is not None and cfg.rank % 2:
        p.append(f"rank: {cfg.rank} is not allowed for {s.name}; it needs an even rank")
    if cfg.alpha is not None and s.alpha_key is None:
        p.append(f"alpha: {cfg.alpha} is not allowed for {s.name}, which has no alpha; remove it")
    allowed = sorted(s.options | set(s.policy_options))
    for key in cfg.options:
        if key not in allowed:
            p.append(f"options.{key}: unknown option for {s.name}; allowed: {', '.join(allowed) or '(none)'}")
    ratio = cfg.options.get("loraplus_lr_ratio")
    if ratio is not None and (not isinstance(ratio, (int, float)) or ratio < 1):
        p.append(f"options.loraplus_lr_ratio: {ratio!r} must be a number >= 1 (B's lr over A's)")
    target_r = cfg.options.get("target_r", 8)  # peft's AdaLoraConfig default
    if s.lora_form == "adalora" and (cfg.rank or s.default_rank) <= target_r:
        p.append(
            f"options.target_r: {target_r} must be below the initial rank {cfg.rank or s.default_rank} for {s.name}"
        )
    if s.name == "ln_tuning" and cfg.target_modules and any(not m.endswith("norm") for m in cfg.target_modules):
        p.append(
            f"target_modules: {cfg.target_modules} must name norm layers for ln_tuning (e.g. post_attention_layernorm)"
        )
    return p
