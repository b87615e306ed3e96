"""Drawing a step's prompts: over-long prompts are dropped and counted, and only a config that drops nearly every
prompt is refused, however long the trial runs."""

from __future__ import annotations

import pytest

from rlvr.config.loader import load_trial
from rlvr.trial.controller import TrialController


def controller(tmp_path, max_prompt_tokens: int) -> TrialController:
    # long-cpu's prompts are 25 or 26 tokens with this tokenizer, so 25 drops a steady share (about 70%).
    c = TrialController(load_trial("long-cpu", [f"data.max_prompt_tokens={max_prompt_tokens}"]), str(tmp_path))
    c._load_tokenizer()
    return c


def test_a_steady_share_of_long_prompts_never_stops_a_long_trial(tmp_path):
    c = controller(tmp_path, 25)
    for _ in range(400):
        prompts, rows = c._draw_prompts(1)
        assert len(prompts) == len(rows) == 1 and len(prompts[0]) <= 25
    assert c.state.dropped_prompts > 100  # the old trial-long bound (100 x n) would have raised by now


def test_a_limit_that_drops_every_prompt_is_refused_naming_the_field(tmp_path):
    c = controller(tmp_path, 10)
    with pytest.raises(ValueError, match="data.max_prompt_tokens: 10 drops nearly every prompt"):
        c._draw_prompts(2)
