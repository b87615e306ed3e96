"""Typed configuration of a study (``rlvr study NAME``, configs/studies/): which method, at which learning rate.

Kept beside schema.py (which it builds on) so that module stays one screenful per section; the same rules hold:
every field has a default and a description, unknown keys are errors.
"""

from __future__ import annotations

from pydantic import Field, ValidationInfo, model_validator

from rlvr.config.schema import AnalysisConfig, MethodConfig, Section, TrialConfig, TrialTemplate


class StudyConfig(Section):
    """Stage 1 tunes each method's learning rate on tuning seeds; stage 2 confirms each at its chosen rate on
    fresh seeds, evaluated on the whole held-out set. The confirmation seeds never inform the choice."""

    name: str = Field("study", description="Run name; the study's sweeps live under <storage>/<name>/.")
    base: TrialTemplate = Field(
        default_factory=TrialConfig,
        description="Settings shared by every trial; base.steps is the budget each confirmed method trains for.",
    )
    methods: list[MethodConfig] = Field(default_factory=list, description="Methods compared; empty uses base.method.")
    lrs: list[float] = Field(
        [1e-4, 1e-3, 1e-2], min_length=2, description="Starting learning-rate grid of every method."
    )
    lr_factor: float = Field(10.0, gt=1, description="Step of a grid extension: the edge lr times or divided by this.")
    max_extensions: int = Field(2, ge=0, description="Extensions per method while its best lr sits on the grid's edge.")
    tuning_seeds: list[int] = Field([1, 2], min_length=1, description="Seeds of stage 1 (learning-rate choice).")
    confirmation_seeds: list[int] = Field(
        list(range(101, 111)),
        min_length=2,
        description="Fresh seeds of stage 2 (the comparison); disjoint from tuning.",
    )
    min_steps: int = Field(
        10,
        ge=1,
        description="Shortest horizon a candidate lr trains before it can be cut, so "
        "slow starters are not cut for being slow.",
    )
    halving: int = Field(
        2,
        ge=2,
        description="Successive halving: keep 1/halving of each method's lrs per rung, "
        "then multiply the horizon by it.",
    )
    tuning_eval_limit: int | None = Field(
        None,
        ge=1,
        description="Problems per benchmark evaluated in stage 1; "
        "None all. Stage 2 always evaluates the whole held-out set.",
    )
    seconds_per_step: float | None = Field(
        None,
        gt=0,
        description="Measured seconds per trial step (evaluations "
        "included) for the time estimate; None uses the memory plan's.",
    )
    storage: str = Field(
        "runs/studies",
        description="Local path or pyarrow filesystem URI of the study's runs "
        "(a sweep's run of the same name lives in runs/NAME).",
    )
    max_concurrent: int | None = Field(None, ge=1, description="Trials running at once; None fits the cluster.")
    max_attempts: int = Field(3, ge=1, description="Attempts per trial before it is marked failed.")
    cpus_per_trial: float = Field(1.0, gt=0, description="CPUs of a trial's controller bundle.")
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig, description="Intervals and tests of the answer.")

    @model_validator(mode="after")
    def _seeds_disjoint(self, info: ValidationInfo) -> StudyConfig:
        shared = sorted(set(self.tuning_seeds) & set(self.confirmation_seeds))
        if shared:
            raise ValueError(
                f"confirmation_seeds: {shared} also tune the learning rate; use fresh seeds, so the "
                "comparison is not made on the seeds that chose it"
            )
        if len(set(self.lrs)) != len(self.lrs) or any(lr <= 0 for lr in self.lrs):
            raise ValueError(f"lrs: {self.lrs}: expected distinct positive learning rates")
        return self
