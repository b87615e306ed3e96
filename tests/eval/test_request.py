"""What `rlvr eval` runs is settled before an engine starts: a trial's own evaluation settings unless given,
generation bounded by the model's context, and bad settings refused naming the option and what is allowed."""

import pytest

from rlvr.config.loader import load_trial
from rlvr.config.schema import ModelConfig, TinyModelConfig
from rlvr.errors import UsageError
from rlvr.eval.request import Given, context_length, fit_context, resolve


def test_a_trial_is_evaluated_with_its_own_settings_unless_given():
    trial = load_trial("demo-cpu", ["reward.extraction=lenient", "data.system_prompt=study"])
    own = resolve(Given(), trial, "unused")
    assert [(s.name, s.k) for s in own.specs] == [("synthetic:addition", 4)]
    assert (own.eval_cfg.max_new_tokens, own.eval_cfg.temperature, own.eval_cfg.top_p) == (16, 0.7, 0.9)
    assert own.data_cfg == trial.data and own.extraction == "lenient"
    given = resolve(Given(k=2, limit=8, temperature=0.0, max_new_tokens=8, prompt_template="boxed"), trial, "unused")
    assert [(s.name, s.k, s.limit) for s in given.specs] == [("synthetic:addition", 2, 8)]
    assert (given.eval_cfg.max_new_tokens, given.eval_cfg.temperature) == (8, 0.0)
    assert given.data_cfg.prompt_template == "boxed" and given.data_cfg.system_prompt == "study"


def test_without_a_trial_the_studys_settings():
    request = resolve(Given(), None, "data")
    assert [(s.name, s.k) for s in request.specs] == [("math500", 4)]
    assert request.eval_cfg.max_new_tokens == 31744 and request.data_cfg.prompt_template == "study"
    assert request.extraction == "study"


@pytest.mark.parametrize(
    "given, message",
    [
        (Given(benchmarks=["nope"]), "--benchmarks: 'nope' is not a shipped benchmark; allowed: aime24, "),
        (Given(benchmarks=["synthetic:mult"]), "synthetic task 'mult' is unknown; allowed: addition"),
        (Given(k=0), "--k: 0 is not allowed"),
        (Given(top_p=2.0), "--top-p: 2.0 is not allowed"),
        (Given(prompt_template="chat"), "--prompt-template: 'chat' is not a template; allowed: plain, boxed, study"),
        (Given(extraction="loose"), "--extraction: 'loose' is not a rule; allowed: study, lenient"),
    ],
)
def test_bad_settings_are_refused_naming_the_option(given, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        resolve(given, None, "data")


def test_a_trial_without_benchmarks_needs_some_named():
    with pytest.raises(UsageError, match="eval.benchmarks is empty"):
        resolve(Given(), load_trial("demo-cpu", ["eval.benchmarks=[]"]), "unused")


def test_generation_is_capped_to_the_context_or_refused_with_the_fix():
    request = resolve(Given(), None, "data")
    tiny = ModelConfig(name="tiny-qwen2", tiny=TinyModelConfig())
    assert context_length(tiny, "unused") == 512
    capped, notice = fit_context(request, 20, 512, "tiny-qwen2", explicit=False)
    assert capped.eval_cfg.max_new_tokens == 492
    assert notice == (
        "notice: max_new_tokens 31744 capped to 492: tiny-qwen2's context is 512 positions and the "
        "longest prompt takes 20"
    )
    same, notice = fit_context(capped, 20, 512, "tiny-qwen2", explicit=True)
    assert same.eval_cfg.max_new_tokens == 492 and notice is None
    with pytest.raises(UsageError, match="leaves 492 for the 31744 new tokens asked; pass --max-new-tokens 492 or"):
        fit_context(request, 20, 512, "tiny-qwen2", explicit=True)
    with pytest.raises(
        UsageError, match=r"longest prompt takes 1192, which leaves 0 .* use a shorter --prompt-template"
    ):
        fit_context(request, 1192, 512, "tiny-qwen2", explicit=False)
    unknown, notice = fit_context(request, 1192, None, "org/model", explicit=False)  # vLLM knows its own limit
    assert unknown == request and notice is None
