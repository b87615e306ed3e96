"""Fixed rollout batches for learner tests: deterministic tokens and advantages, no engine needed."""

import random

from rlvr.learner.batch import RolloutBatch


def fixed_batch(n: int = 8, seed: int = 0, prompt_len: int = 5, max_completion: int = 6) -> RolloutBatch:
    rng = random.Random(seed)
    prompts = [[rng.randrange(3, 100) for _ in range(prompt_len + i % 2)] for i in range(n)]
    completions = [[rng.randrange(3, 100) for _ in range(rng.randint(2, max_completion))] for _ in range(n)]
    return RolloutBatch(
        prompt_ids=prompts,
        completion_ids=completions,
        engine_logprobs=[[-4.8] * len(c) for c in completions],  # ~log(1/128): a uniform sampler
        advantages=[1.0 if i % 2 == 0 else -1.0 for i in range(n)],
        in_loss=[True] * n,
    )
