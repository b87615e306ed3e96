"""Training sets: sources, field mapping, skipped rows, seeded epochs and an exactly restorable cursor."""

import json
import logging

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlvr.config.schema import DataConfig
from rlvr.data.synthetic import generate
from rlvr.data.train_sets import TrainSet, extract_answer, load_train_set, resolve_fields, synthetic_benchmark


def _synthetic(seed=3, n=50):
    return load_train_set(DataConfig(source="synthetic:addition", levels=[1, 2], num_synthetic=n), seed)


def test_synthetic_source_gives_id_problem_answer_rows_from_the_train_split():
    ts = _synthetic()
    assert len(ts) == 50
    assert set(ts.rows[0]) == {"id", "problem", "answer"}
    a, b = ts.rows[0]["problem"].split("+")
    assert int(ts.rows[0]["answer"]) == int(a) + int(b)


def test_same_seed_same_order_and_other_seed_other_order():
    assert _synthetic(seed=3).next_batch(20) == _synthetic(seed=3).next_batch(20)
    assert _synthetic(seed=3).next_batch(20) != _synthetic(seed=4).next_batch(20)


def test_each_epoch_visits_every_row_once_in_a_new_order():
    ts = TrainSet([{"id": str(i), "problem": str(i), "answer": str(i)} for i in range(10)], seed=7)
    first, second = ts.next_batch(10), ts.next_batch(10)
    assert sorted(r["id"] for r in first) == sorted(r["id"] for r in second) == sorted(str(i) for i in range(10))
    assert first != second
    assert ts.state()["epoch"] == 1


def test_cursor_state_restores_the_exact_continuation_across_epoch_boundaries():
    reference = _synthetic(n=13)
    expected = [reference.next_batch(5) for _ in range(8)]
    ts = _synthetic(n=13)
    got = [ts.next_batch(5) for _ in range(3)]
    saved = json.loads(json.dumps(ts.state()))  # a checkpoint stores it as JSON
    resumed = _synthetic(n=13)
    resumed.load_state(saved)
    got += [resumed.next_batch(5) for _ in range(5)]
    assert got == expected


def test_cursor_from_another_source_is_rejected_with_both_sizes():
    ts = _synthetic(n=13)
    with pytest.raises(ValueError, match="13 rows.*20 rows"):
        _synthetic(n=20).load_state(ts.state())


def test_local_jsonl_rows_missing_problem_or_answer_are_skipped_with_one_warning(tmp_path, caplog):
    path = tmp_path / "train.jsonl"
    recs = [
        {"problem": "1+1", "answer": "2"},
        {"problem": "", "answer": "3"},
        {"problem": "2+2"},
        {"problem": "3+3", "answer": None},
        {"problem": "4+4", "answer": "8"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in recs))
    with caplog.at_level(logging.WARNING, logger="rlvr.data.train_sets"):
        ts = load_train_set(DataConfig(source=str(path)), seed=0)
    assert [r["answer"] for r in ts.rows] == ["2", "8"]
    assert ts.skipped == 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipped 3 of 5" in warnings[0].getMessage()


def test_local_parquet_with_explicit_field_mapping(tmp_path):
    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"q": ["1+1", "2+3"], "sol": ["We get \\boxed{2}", "2"]}), path)
    ts = load_train_set(DataConfig(source=str(path), problem_field="q", answer_field="sol"), seed=0)
    assert sorted(r["problem"] for r in ts.rows) == ["1+1", "2+3"]


@pytest.mark.parametrize(
    "value, fmt, answer",
    [
        ("So $x=2$ and the total is \\boxed{\\frac{1}{2}}.", "boxed", "\\frac{1}{2}"),
        ("Cases... \\boxed{3} then \\boxed{4}", "boxed", "4"),
        ("no box here", "boxed", None),
        ("Natalia sold 48/2 = 24 clips.\n#### 1,024", "gsm8k", "1024"),
        ("no marker", "gsm8k", None),
        ("  42 ", "plain", "42"),
        (None, "plain", None),
    ],
)
def test_answers_are_cut_from_math_solutions_and_gsm8k_answers(value, fmt, answer):
    assert extract_answer(value, fmt) == answer


def test_known_hub_datasets_bring_their_field_mapping_and_explicit_fields_win():
    dapo = resolve_fields(DataConfig(source="open-r1/DAPO-Math-17k-Processed"), ["prompt", "solution", "data_source"])
    assert (dapo.problem, dapo.answer, dapo.answer_format) == ("prompt", "solution", "plain")
    gsm = resolve_fields(DataConfig(source="openai/gsm8k"), ["question", "answer"])
    assert (gsm.problem, gsm.answer, gsm.answer_format) == ("question", "answer", "gsm8k")
    math = resolve_fields(DataConfig(source="EleutherAI/hendrycks_math"), ["problem", "solution", "level"])
    assert (math.problem, math.answer, math.answer_format) == ("problem", "solution", "boxed")
    own = resolve_fields(DataConfig(source="openai/gsm8k", problem_field="q"), ["q", "answer"])
    assert own.problem == "q"


def test_missing_column_error_names_the_field_and_the_columns_present():
    with pytest.raises(ValueError, match=r"data.answer_field: column 'ans'.*columns are problem, solution"):
        resolve_fields(DataConfig(source="x.jsonl", answer_field="ans"), ["problem", "solution"])


def test_synthetic_benchmark_is_held_out_from_training_problems():
    held = synthetic_benchmark("addition", [1], 100, seed=0)
    train = {p.problem for p in generate("addition", [1], 3000, seed=5, split="train")}
    assert len(held) == 100 and not train & {r["problem"] for r in held}
