"""Prompt templates render problems through the model's chat template."""

import pytest

from rlvr.data.prompts import BOXED_INSTRUCTION, STUDY_SYSTEM_PROMPT, TEMPLATES, messages, render_prompt
from rlvr.models.tiny import build_tokenizer


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def test_plain_template_is_the_problem_alone_in_the_user_turn(tok):
    text = tok.decode(render_prompt(tok, "12+34", "plain"))
    assert text == "<|im_start|>user\n12+34<|im_end|>\n<|im_start|>assistant\n"


def test_plain_prompt_matches_what_the_tiny_model_is_pretrained_on(tok):
    from rlvr.models.pretrain import prompt_text

    assert tok.decode(render_prompt(tok, "5+6", "plain")) == prompt_text(tok, "5+6")


def test_boxed_and_study_templates_ask_for_a_boxed_answer_and_study_adds_its_system_prompt(tok):
    assert messages("1+1", "boxed") == [{"role": "user", "content": f"1+1\n{BOXED_INSTRUCTION}"}]
    study = messages("1+1", "study")
    assert study[0] == {"role": "system", "content": STUDY_SYSTEM_PROMPT}
    assert study[1]["content"].endswith(BOXED_INSTRUCTION)
    assert tok.decode(render_prompt(tok, "1+1", "study")).startswith("<|im_start|>system\nA conversation")


def test_openr1_template_asks_for_an_answer_line():
    [turn] = messages("1+1", "openr1")
    assert "1+1" in turn["content"] and 'after "Answer:"' in turn["content"]


def test_system_prompt_can_be_named_or_given_as_text_and_replaces_the_templates():
    assert messages("1+1", "plain", system_prompt="study")[0]["content"] == STUDY_SYSTEM_PROMPT
    assert messages("1+1", "study", system_prompt="Be brief.")[0] == {"role": "system", "content": "Be brief."}


def test_unknown_template_error_lists_the_names():
    with pytest.raises(
        ValueError, match="data.prompt_template: 'chat' is not a template; allowed: " + ", ".join(TEMPLATES)
    ):
        messages("1+1", "chat")
