"""Named prompt templates: a problem becomes chat messages, then token ids through the model's chat template."""

from __future__ import annotations

from collections.abc import Callable

BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."

# The study's system prompt (open-r1 / TRL GRPO recipes): think first, then answer.
STUDY_SYSTEM_PROMPT = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with the "
    "answer. The reasoning process is enclosed within <think> </think> tags, followed by the final answer, "
    "i.e., <think> reasoning process here </think> answer here."
)

SYSTEM_PROMPTS = {"study": STUDY_SYSTEM_PROMPT}
"""System prompts by name; DataConfig.system_prompt may name one or give the text itself."""


def _plain(problem: str) -> tuple[str | None, str]:
    return None, problem


def _boxed(problem: str) -> tuple[str | None, str]:
    return None, f"{problem}\n{BOXED_INSTRUCTION}"


def _study(problem: str) -> tuple[str | None, str]:
    return STUDY_SYSTEM_PROMPT, f"{problem}\n{BOXED_INSTRUCTION}"


def _openr1(problem: str) -> tuple[str | None, str]:
    # The prompt of open-r1/DAPO-Math-17k-Processed: the answer goes on a last line after "Answer:".
    return None, (
        "Solve the following math problem step by step. The last line of your response should be of the form "
        "Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n"
        f'{problem}\n\nRemember to put your answer on its own line after "Answer:".'
    )


TEMPLATES: dict[str, Callable[[str], tuple[str | None, str]]] = {
    "plain": _plain,  # the problem alone: what the tiny model is pretrained on
    "boxed": _boxed,
    "study": _study,
    "openr1": _openr1,
}
"""Template name -> (default system prompt or None, user message) for a problem."""


def messages(problem: str, template: str, system_prompt: str | None = None) -> list[dict[str, str]]:
    """The chat turns for ``problem``; ``system_prompt`` (a SYSTEM_PROMPTS name or text) replaces the template's."""
    if template not in TEMPLATES:
        raise ValueError(f"data.prompt_template: {template!r} is not a template; allowed: {', '.join(TEMPLATES)}")
    default_system, user = TEMPLATES[template](problem)
    system = SYSTEM_PROMPTS.get(system_prompt, system_prompt) if system_prompt is not None else default_system
    turns = [{"role": "system", "content": system}] if system else []
    return turns + [{"role": "user", "content": user}]


def render_prompt(tokenizer, problem: str, template: str, system_prompt: str | None = None) -> list[int]:
    """Token ids of the prompt, ending where the assistant's answer starts."""
    text = tokenizer.apply_chat_template(
        messages(problem, template, system_prompt), tokenize=False, add_generation_prompt=True
    )
    return tokenizer(text, add_special_tokens=False)["input_ids"]
