"""Every shipped benchmark's gold verifies against itself written as a boxed answer."""

import pytest

from rlvr.config.schema import DataConfig
from rlvr.eval.selfcheck import self_check


@pytest.mark.slow
def test_every_shipped_gold_verifies_against_itself_at_99_percent_or_more():
    table = self_check(DataConfig().data_dir)
    rates = dict(zip(table.column("benchmark").to_pylist(), table.column("rate").to_pylist()))
    assert set(rates) == {"aime24", "aime25", "amc23", "hmmt25", "math500", "minerva_math", "olympiadbench"}
    low = {b: (r, e) for b, r, e in zip(rates, rates.values(), table.column("exceptions").to_pylist()) if r < 0.99}
    assert not low, low
