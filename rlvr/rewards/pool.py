"""RewardPool: verifies completions in worker subprocesses with a hard deadline per item.

A stuck item (sympy on an exponent tower, a regex on a megabyte of braces) cannot be interrupted from inside
its process without SIGALRM, so its worker is killed at the deadline and replaced; the item scores 0 and is
counted as a timeout, and every other item of the batch is still scored by the remaining workers.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait

from rlvr.config.schema import RewardConfig
from rlvr.rewards.verify import quiet_math_verify, score

WARMUP_DEADLINE_S = 120.0  # a fresh verifier imports sympy and math-verify before it reports ready
WORKER_MEMORY_BYTES = 4 << 30  # sympy can allocate without bound on huge powers; fail the item, not the host
WARMUP_ITEM = ("The answer is \\boxed{\\frac{1}{2}}", "0.5")


@dataclass
class RewardItem:
    """One completion to score against its gold answer."""

    completion: str
    gold: str
    truncated: bool = False


@dataclass
class RewardResult:
    """The verdict on one item; ``reward`` is correctness plus the weighted format term and any shaping."""

    reward: float
    correct: bool
    extracted: str | None
    timed_out: bool = False
    gold_fallback: bool = False
    format_ok: bool = False
    error: str | None = None


def _serve(conn, extraction: str) -> None:
    """Verifier subprocess: warm up, say ready, then score items until told to stop (None)."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))

    quiet_math_verify()
    score(WARMUP_ITEM[0], WARMUP_ITEM[1], False, extraction)  # first call in a process costs 0.4-0.8 s
    conn.send("ready")
    while (msg := conn.recv()) is not None:
        completion, gold, truncated = msg
        try:
            conn.send(score(completion, gold, truncated, extraction))
        except (Exception, RecursionError, MemoryError) as e:
            conn.send({"error": f"{type(e).__name__}: {str(e)[:200]}"})


class _Verifier:
    """One subprocess and its pipe; ``job`` is (item index, deadline) while it works on an item."""

    def __init__(self, ctx, extraction: str):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, extraction), daemon=True, name="rlvr-verifier")
        self.proc.start()
        child.close()
        self.ready = False
        self.started = time.monotonic()
        self.job: tuple[int, float] | None = None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(timeout=2)
        if self.proc.is_alive():
            self.kill()
        else:
            self.conn.close()


class RewardPool:
    """``cfg.workers`` verifier subprocesses, warmed up at start. ``shaping`` (off by default) adds a term to
    each reward, e.g. a length penalty: it gets the item and its result and returns the amount to add."""

    def __init__(self, cfg: RewardConfig, shaping: Callable[[RewardItem, RewardResult], float] | None = None):
        self.cfg = cfg
        self.shaping = shaping
        self.reset()
        self._ctx = mp.get_context("forkserver")
        # Replacement verifiers fork from a server that has sympy imported already: ~0.1 s instead of seconds.
        self._ctx.set_forkserver_preload(["math_verify", "rlvr.rewards.verify"])
        self._workers = [_Verifier(self._ctx, cfg.extraction) for _ in range(cfg.workers)]
        self._wait_ready()

    def reset(self) -> None:
        """Counters from zero (a warm pool's lease); the verifiers hold no state between items."""
        self.stats = {"scored": 0, "correct": 0, "timeouts": 0, "gold_fallbacks": 0, "errors": 0, "restarts": 0}

    def _wait_ready(self) -> None:
        for w in self._workers:
            if not w.ready:
                self._await_ready(w)

    def _await_ready(self, w: _Verifier) -> None:
        left = WARMUP_DEADLINE_S - (time.monotonic() - w.started)
        if left <= 0 or not w.conn.poll(left):
            raise RuntimeError(f"reward verifier did not start within {WARMUP_DEADLINE_S:.0f} s")
        try:
            w.ready = w.conn.recv() == "ready"
        except EOFError:
            raise RuntimeError(f"reward verifier died during start-up (exit code {w.proc.exitcode})") from None

    def _replace(self, w: _Verifier) -> _Verifier:
        w.kill()
        self.stats["restarts"] += 1
        fresh = _Verifier(self._ctx, self.cfg.extraction)
        self._workers[self._workers.index(w)] = fresh
        return fresh

    def _finish(self, item: RewardItem, out: dict, timed_out: bool = False) -> RewardResult:
        res = RewardResult(
            reward=0.0,
            correct=out.get("correct", False),
            extracted=out.get("extracted"),
            timed_out=timed_out,
            gold_fallback=out.get("gold_fallback", False),
            format_ok=out.get("format_ok", False),
            error=out.get("error"),
        )
        res.reward = float(res.correct) + self.cfg.format_weight * float(res.format_ok)
        if self.shaping is not None:
            res.reward += self.shaping(item, res)
        self.stats["scored"] += 1
        self.stats["correct"] += res.correct
        self.stats["timeouts"] += res.timed_out
        self.stats["gold_fallbacks"] += res.gold_fallback
        self.stats["errors"] += res.error is not None and not res.timed_out
        return res

    def score(self, items: list[RewardItem]) -> list[RewardResult]:
        """One result per item, in order. Never raises for bad text; a stuck item scores 0 as a timeout."""
        results: list[RewardResult | None] = [None] * len(items)
        pending = deque(range(len(items)))
        while pending or any(w.job for w in self._workers):
            for w in list(self._workers):
                if w.ready and w.job is None and pending:
                    i = pending.popleft()
                    try:
                        w.conn.send((items[i].completion, items[i].gold, items[i].truncated))
                    except OSError:  # it died while idle: the item goes to its replacement
                        pending.appendleft(i)
                        self._replace(w)
                        continue
                    w.job = (i, time.monotonic() + self.cfg.timeout_s)
            now = time.monotonic()
            horizon = [w.job[1] - now for w in self._workers if w.job]
            horizon += [WARMUP_DEADLINE_S - (now - w.started) for w in self._workers if not w.ready]
            for conn in wait([w.conn for w in self._workers], timeout=max(0.0, min(horizon, default=0.0))):
                w = next(x for x in self._workers if x.conn is conn)
                if not w.ready:
                    self._await_ready(w)
                    continue
                try:
                    out = w.conn.recv()
                except (EOFError, OSError):  # killed from outside, e.g. by the kernel past its memory limit
                    out = {"error": f"verifier died (exit code {w.proc.exitcode})"}
                    self._replace(w)
                if w.job is not None:
                    results[w.job[0]] = self._finish(items[w.job[0]], out)
                    w.job = None
            now = time.monotonic()
            for w in list(self._workers):
                if w.job and now >= w.job[1]:
                    i = w.job[0]
                    self._replace(w)
                    results[i] = self._finish(
                        items[i], {"error": f"timeout after {self.cfg.timeout_s} s"}, timed_out=True
                    )
        return results  # type: ignore[return-value]

    def close(self) -> None:
        for w in self._workers:
            w.stop()
        self._workers = []

    def __enter__(self) -> RewardPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
