"""analyze_trial and analyze_run on real checkpoints of a tiny Qwen2, rebuilt through the method registry."""

import pytest
import torch
from safetensors.torch import save_file

from rlvr.analysis.spectral import analyze_run, analyze_trial
from rlvr.config.layout import TrialLayout
from rlvr.config.loader import dump
from rlvr.config.schema import CheckpointConfig, MethodConfig, ModelConfig, TinyModelConfig, TrialConfig
from rlvr.models.tiny import build_model, build_tokenizer, save_tiny
from rlvr.peft_methods.policy import build_policy

pytestmark = pytest.mark.slow

RANK, ALPHA = 4, 8.0
TARGETS = ["q_proj", "v_proj"]


@pytest.fixture(scope="module")
def base_path(tmp_path_factory):
    tiny = TinyModelConfig(
        hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4, num_kv_heads=2, pretrain_steps=0
    )
    model = build_model(tiny)
    # A random init has a flat spectrum, where "the top-r subspace" (and PiSSA's fast SVD of it) is ill-defined;
    # pretrained weights have a few dominant directions, so give the adapted weights some.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".weight") and name.rsplit(".", 2)[-2] in TARGETS:
                U, S, Vh = torch.linalg.svd(p, full_matrices=False)
                S[:RANK] *= 10
                p.copy_(U @ torch.diag(S) @ Vh)
    return str(save_tiny(model, build_tokenizer(), tmp_path_factory.mktemp("base") / "tiny"))


def _write_trial(trial_dir, base_path, method, perturb):
    """A trial folder whose checkpoints at steps 2 and 4 hold the policy after ``perturb(policy, scale)``."""
    from transformers import AutoModelForCausalLM

    cfg = TrialConfig(
        steps=4,
        checkpoint=CheckpointConfig(every_steps=2),
        model=ModelConfig(name=base_path),
        method=MethodConfig(name=method, rank=RANK, alpha=ALPHA, dropout=0.0, target_modules=TARGETS),
    )
    trial_dir.mkdir(parents=True)
    (trial_dir / "config.yaml").write_text(dump(cfg))
    policy = build_policy(AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32), cfg.method, cfg.steps)
    g = torch.Generator().manual_seed(0)
    states = {}
    for step in (2, 4):
        with torch.no_grad():
            perturb(policy, 0.05 * step, g)
        state = {k: v.contiguous() for k, v in policy.trainable_state_dict().items()}
        folder = trial_dir / TrialLayout.checkpoint(step)
        folder.mkdir(parents=True)
        save_file(state, str(folder / TrialLayout.TRAINABLE))
        (folder / TrialLayout.COMPLETE).write_text("{}")  # a checkpoint is complete once its meta.json exists
        states[step] = state
    return states


def _perturb_B(policy, scale, g):
    for name, p in policy.model.named_parameters():
        if "lora_B" in name:
            p.copy_(scale * torch.randn(p.shape, generator=g))


@pytest.fixture(scope="module")
def lora_trial(tmp_path_factory, base_path):
    trial_dir = tmp_path_factory.mktemp("run") / "trials" / "lora00000001"
    return trial_dir, _write_trial(trial_dir, base_path, "lora", _perturb_B)


def test_lora_update_measured_is_the_adapters_scaled_B_A(lora_trial):
    trial_dir, states = lora_trial
    table = analyze_trial(str(trial_dir), k=RANK)
    rows = table.to_pylist()
    assert sorted({(r["module"], r["layer"]) for r in rows}) == [
        ("q_proj", 0),
        ("q_proj", 1),
        ("v_proj", 0),
        ("v_proj", 1),
    ]
    assert sorted({r["step"] for r in rows}) == [2, 4]
    for r in rows:
        m = r["param"].removesuffix(".weight")
        state = states[r["step"]]
        dW = (ALPHA / RANK) * state[f"{m}.lora_B.default.weight"] @ state[f"{m}.lora_A.default.weight"]
        assert r["dw_norm"] == pytest.approx(float(dW.norm()), rel=1e-4)
        assert 1 < r["dw_effective_rank"] <= RANK + 1e-3
    assert (trial_dir / "analysis" / "spectral.parquet").exists()


def test_steps_without_a_checkpoint_are_refused_with_the_available_ones(lora_trial):
    with pytest.raises(ValueError, match=r"steps \[3\] have no checkpoint; available steps: \[2, 4\]"):
        analyze_trial(str(lora_trial[0]), steps=[3], write=False)


def test_analyze_run_covers_every_trial_with_checkpoints(lora_trial):
    run_dir = lora_trial[0].parent.parent
    (run_dir / "trials" / "nocheckpoint0").mkdir()
    table = analyze_run(str(run_dir), k=RANK, steps=[4])
    assert set(table.column("trial_id").to_pylist()) == {"lora00000001"}
    assert set(table.column("step").to_pylist()) == {4}


@pytest.mark.parametrize("method, inside", [("pissa", True), ("milora", False)])
def test_svd_init_update_of_B_lives_where_the_init_put_A(tmp_path, base_path, method, inside):
    # PiSSA's A starts as W0's top-r right singular vectors, MiLoRA's as its bottom-r ones; moving only B keeps
    # dW = dB A0 in A0's row space: all of it inside W0's principal input subspace for PiSSA, none for MiLoRA.
    _write_trial(tmp_path / method, base_path, method, _perturb_B)
    rows = analyze_trial(str(tmp_path / method), k=RANK, write=False).to_pylist()
    for r in rows:
        if inside:
            assert r["energy_right"] > 0.9 > 5 * r["baseline_right"]
        else:
            assert r["energy_right"] < 0.01
