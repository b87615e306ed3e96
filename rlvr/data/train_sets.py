"""Training prompts: load a source into {id, problem, answer} rows and walk them in seeded epochs.

Sources: ``synthetic:<task>``, a hub dataset name (through ``datasets.load_dataset``), or a local .jsonl or
.parquet file. Known hub datasets bring their own field mapping; fields set explicitly in DataConfig win.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rlvr.config.schema import DataConfig
from rlvr.data.hub import load_hub_dataset
from rlvr.data.synthetic import generate
from rlvr.rewards.format import boxed_answers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fields:
    """Where a dataset keeps the problem and the answer, and how to cut the answer out of its column."""

    problem: str
    answer: str
    answer_format: str = "plain"  # plain | boxed (last \boxed{} of a solution) | gsm8k (text after '####')
    config: str | None = None  # the hub dataset's configuration name


KNOWN_FIELDS = {
    "open-r1/DAPO-Math-17k-Processed": Fields("prompt", "solution", config="all"),
    "hendrycks/competition_math": Fields("problem", "solution", "boxed"),
    "EleutherAI/hendrycks_math": Fields("problem", "solution", "boxed"),
    "DigitalLearningGmbH/MATH-lighteval": Fields("problem", "solution", "boxed"),
    "openai/gsm8k": Fields("question", "answer", "gsm8k", config="main"),
    "gsm8k": Fields("question", "answer", "gsm8k", config="main"),
}


def extract_answer(value, answer_format: str) -> str | None:
    """The gold answer from a dataset column, or None when there is none."""
    if value is None:
        return None
    text = str(value).strip()
    if answer_format == "boxed":
        boxes = boxed_answers(text)
        text = boxes[-1].strip() if boxes else ""
    elif answer_format == "gsm8k":
        text = text.split("####")[-1].strip().replace(",", "") if "####" in text else ""
    elif answer_format != "plain":
        raise ValueError(f"answer format {answer_format!r} is unknown; allowed: plain, boxed, gsm8k")
    return text or None


def to_rows(records: Iterable[dict], fields: Fields, id_prefix: str) -> tuple[list[dict], int]:
    """{id, problem, answer} rows from raw records, and how many were skipped for a missing problem or answer."""
    rows, skipped = [], 0
    for i, rec in enumerate(records):
        problem = rec.get(fields.problem)
        answer = extract_answer(rec.get(fields.answer), fields.answer_format)
        if not isinstance(problem, str) or not problem.strip() or answer is None:
            skipped += 1
            continue
        rid = rec.get("id")
        rows.append({"id": str(rid) if rid is not None else f"{id_prefix}-{i}", "problem": problem, "answer": answer})
    return rows, skipped


def load_records(source: str, split: str, config: str | None = None):
    """A datasets.Dataset from a local .jsonl/.parquet file or a hub name."""
    import datasets

    suffix = Path(source).suffix
    if suffix in (".jsonl", ".json", ".parquet"):
        if not Path(source).exists():
            raise FileNotFoundError(f"data.source: {source} does not exist")
        builder = "parquet" if suffix == ".parquet" else "json"
        return datasets.load_dataset(builder, data_files=source, split="train")

    return load_hub_dataset(source, config, split=split)


def resolve_fields(cfg: DataConfig, columns: list[str]) -> Fields:
    """Explicit DataConfig fields, else the known dataset's, else the defaults or the benchmark-style columns."""
    known = KNOWN_FIELDS.get(cfg.source)
    explicit = cfg.model_fields_set
    fields = []
    for name, fallback in (("problem_field", "problem"), ("answer_field", "answer")):
        if name in explicit or known is None and getattr(cfg, name) in columns:
            fields.append(getattr(cfg, name))
        elif known is not None:
            fields.append(getattr(known, name.split("_")[0]))
        else:
            fields.append(fallback)
    for name, col in zip(("problem_field", "answer_field"), fields):
        if col not in columns:
            raise ValueError(
                f"data.{name}: column {col!r} is not in {cfg.source}; its columns are {', '.join(columns)}"
            )
    return Fields(fields[0], fields[1], known.answer_format if known else "plain", known.config if known else None)


class TrainSet:
    """Rows in a seeded order per epoch, with a cursor a checkpoint can store and restore exactly."""

    def __init__(self, rows: list[dict], seed: int, skipped: int = 0):
        if not rows:
            raise ValueError("training set is empty: every row lacked a problem or an answer")
        self.rows = rows
        self.seed = seed
        self.skipped = skipped
        self.epoch = 0
        self.pos = 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.rows))

    def __len__(self) -> int:
        return len(self.rows)

    def next_batch(self, n: int) -> list[dict]:
        """The next ``n`` rows; an epoch boundary inside the batch continues into the next epoch's order."""
        out = []
        while len(out) < n:
            if self.pos == len(self.rows):
                self.epoch += 1
                self.pos = 0
                self._order = self._permutation(self.epoch)
            take = min(n - len(out), len(self.rows) - self.pos)
            out += [self.rows[i] for i in self._order[self.pos : self.pos + take]]
            self.pos += take
        return out

    def state(self) -> dict:
        return {"seed": self.seed, "epoch": self.epoch, "pos": self.pos, "num_rows": len(self.rows)}

    def load_state(self, state: dict) -> None:
        if state["num_rows"] != len(self.rows) or state["seed"] != self.seed:
            raise ValueError(
                f"data cursor was saved for {state['num_rows']} rows with seed {state['seed']}, "
                f"but this training set has {len(self.rows)} rows with seed {self.seed}; load the same source"
            )
        self.epoch, self.pos = state["epoch"], state["pos"]
        self._order = self._permutation(self.epoch)


def load_train_set(cfg: DataConfig, seed: int) -> TrainSet:
    """The training rows of ``cfg.source`` walked in an order derived from ``seed``."""
    if cfg.source.startswith("synthetic:"):
        task = cfg.source.split(":", 1)[1]
        problems = generate(task, cfg.levels, cfg.num_synthetic, seed=seed, split="train")
        return TrainSet([{"id": p.id, "problem": p.problem, "answer": p.answer} for p in problems], seed)
    known = KNOWN_FIELDS.get(cfg.source)
    dataset = load_records(cfg.source, cfg.split, known.config if known else None)
    fields = resolve_fields(cfg, dataset.column_names)
    rows, skipped = to_rows(dataset, fields, id_prefix=f"{Path(cfg.source).stem}-{cfg.split}")
    if skipped:
        log.warning(
            "data.source %s: skipped %d of %d rows with a missing problem or answer", cfg.source, skipped, len(dataset)
        )
    return TrainSet(rows, seed, skipped)


def synthetic_benchmark(task: str, levels: list[int], n: int, seed: int) -> list[dict]:
    """Held-out synthetic problems (disjoint from every training split) as {id, problem, answer} rows."""
    return [
        {"id": p.id, "problem": p.problem, "answer": p.answer}
        for p in generate(task, levels, n, seed=seed, split="test")
    ]
