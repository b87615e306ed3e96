"""eval_command: a tiny model with a trained-style LoRA adapter is merged, served by the HF engine and scored."""

import pyarrow.parquet as pq
import pytest

from rlvr.config.schema import TinyModelConfig

TINY = TinyModelConfig(hidden_size=64, intermediate_size=128, num_layers=2, num_heads=2, num_kv_heads=1)


@pytest.mark.slow
def test_eval_command_merges_the_adapter_and_writes_the_tables(tmp_path):
    from peft import LoraConfig, get_peft_model

    from rlvr.eval.cli import eval_command
    from rlvr.models.tiny import build_model, build_tokenizer, save_tiny

    base = save_tiny(build_model(TINY), build_tokenizer(), tmp_path / "base")
    peft_model = get_peft_model(
        build_model(TINY), LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    peft_model.save_pretrained(tmp_path / "adapter")
    summary = eval_command(
        model=str(base),
        adapter=str(tmp_path / "adapter"),
        benchmarks=["synthetic:addition"],
        k=2,
        limit=3,
        engine="hf",
        out=str(tmp_path / "out"),
        max_new_tokens=4,
        prompt_template="plain",
        reward_workers=1,
    )
    assert summary.column("benchmark").to_pylist() == ["synthetic:addition", "average"]
    samples = pq.read_table(tmp_path / "out" / "eval" / "step_000000" / "samples.parquet")
    assert samples.num_rows == 6


def test_a_trial_checkpoint_is_scored_with_the_trials_own_extraction_rule():
    from rlvr.eval.request import extraction_rule

    assert extraction_rule(None, "study") == "study" and extraction_rule(None, "lenient") == "lenient"
    assert extraction_rule("study", "study") == "study"
    with pytest.raises(ValueError, match="reward.extraction 'study'"):
        extraction_rule("lenient", "study")
    # without a trial, the rule trials default to, so `rlvr eval` and a trial's evaluation agree
    assert extraction_rule(None, None) == "study" and extraction_rule("lenient", None) == "lenient"
