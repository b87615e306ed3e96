"""vLLM's request outputs as rlvr Completions, built once per completion instead of once per token.

rlvr asks vLLM for no text (``detokenize=False``) and for flat log-probs (``flat_logprobs=True``): with text on,
vLLM decodes every sampled token's log-prob entry into a token string on every engine step (~17 us a token on
CPU, benchmarks/RESULTS.md), and rlvr reads only the sampled token's log-prob. The text is decoded here at the end
by vLLM's own incremental detokenizer, fed the same tokens in the same order, so it is the text vLLM would have
returned (docs/platform-notes.md).
"""

from __future__ import annotations

from rlvr.rollout.types import Completion


def sampled_logprobs(flat) -> list[float]:
    """The sampled (or prompt) token's log-prob at each position of a vLLM FlatLogprobs: vLLM puts it first."""
    return [flat.logprobs[i] for i in flat.start_indices]


def completion_text(tokenizer, prompt: list[int], params, token_ids: list[int], finish_reason: str) -> str:
    """The text vLLM's output processor builds for a finished completion: its detokenizer for this request, given
    the completion's tokens (a stop token left out as vLLM leaves it out)."""
    from vllm.v1.engine import EngineCoreRequest
    from vllm.v1.engine.detokenizer import IncrementalDetokenizer

    request = EngineCoreRequest(
        request_id="rlvr-text",
        prompt_token_ids=prompt,
        mm_features=None,
        sampling_params=params,
        pooling_params=None,
        arrival_time=0.0,
        lora_request=None,
        cache_salt=None,
        data_parallel_rank=None,
    )
    detokenizer = IncrementalDetokenizer.from_new_request(tokenizer, request)
    detokenizer.update(token_ids, stop_terminated=finish_reason == "stop")
    return detokenizer.get_next_output_text(finished=True, delta=False)


def completions(prompt_index: int, output, params, tokenizer) -> list[Completion]:
    """A vLLM RequestOutput of a request sent with ``params`` (detokenize=False, flat log-probs) as Completions."""
    return [
        Completion(
            prompt_index=prompt_index,
            token_ids=list(c.token_ids),
            logprobs=sampled_logprobs(c.logprobs),
            text=completion_text(tokenizer, output.prompt_token_ids, params, c.token_ids, c.finish_reason),
            finish_reason=c.finish_reason,
        )
        for c in output.outputs
    ]
