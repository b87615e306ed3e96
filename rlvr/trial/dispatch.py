"""One generation round over several engines, handed out from a queue (rollout.dispatch_groups).

A static split gives every engine the same number of prompts up front, so the step waits for the engine whose
completions ran longest. Here the round's groups are cut into chunks of ``dispatch_groups`` consecutive
prompts; every engine starts with ``depth`` chunks (so it never waits for the controller between two), and an
engine that returns a chunk is given the next one from the queue: a faster engine takes more.

Group ``i`` answers ``prompts[i]`` and every Completion's ``prompt_index`` is ``i``, whichever engine made it.
Chunk ``c`` always covers the same prompts and carries the seed a single generate call over all prompts would
have used for them (vLLM seeds request ``i`` with ``seed + i * n``), so for a given seed the completions do not
depend on which engine took which chunk, nor on the timing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import replace

from rlvr.rollout.types import Completion, SamplingSpec

# submit(engine, prompts, spec): start one engine's generate call, return its future
Submit = Callable[[int, list[list[int]], SamplingSpec], Future]


def chunk_spec(spec: SamplingSpec, start: int) -> SamplingSpec:
    """The spec of the chunk whose first prompt is ``start``: its seed is where the one-call seeds stand there."""
    return spec if spec.seed is None else replace(spec, seed=spec.seed + start * spec.n)


class QueuedRound:
    """A round in flight: ``launch`` has started the first chunks, ``collect`` hands out the rest and waits.

    ``taken[e]``: the groups engine ``e`` generated in this round.
    """

    def __init__(
        self, submit: Submit, engines: int, prompts: list[list[int]], spec: SamplingSpec, chunk: int, depth: int = 2
    ):
        self._submit, self._prompts, self._spec, self._chunk = submit, prompts, spec, chunk
        self._queue = deque(range(0, len(prompts), chunk))
        self._pending: dict[Future, tuple[int, int]] = {}  # future -> (engine, first prompt)
        self.groups: list[list[Completion] | None] = [None] * len(prompts)
        self.taken = [0] * engines
        for _ in range(depth):
            for engine in range(engines):
                self._next(engine)

    def _next(self, engine: int) -> None:
        if self._queue:
            start = self._queue.popleft()
            stop = min(start + self._chunk, len(self._prompts))
            future = self._submit(engine, self._prompts[start:stop], chunk_spec(self._spec, start))
            self._pending[future] = (engine, start)

    def collect(self) -> list[list[Completion]]:
        """Every group, in prompt order, once every chunk is back."""
        while self._pending:
            done, _ = wait(list(self._pending), return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: self._pending[f][1]):
                engine, start = self._pending.pop(future)
                groups = future.result()
                for local, group in enumerate(groups):
                    for c in group:  # each engine numbers its own chunk from 0
                        c.prompt_index = start + local
                    self.groups[start + local] = group
                self.taken[engine] += len(groups)
                self._next(engine)
        return self.groups
