"""What the docs say about the analysis matches the code: the spectral k, how intervals are paired, no retracted
noise figure left behind."""

import re
from pathlib import Path

from rlvr.analysis.spectral import DEFAULT_K

ROOT = Path(__file__).resolve().parents[2]


def test_the_spectral_table_states_the_k_the_cli_runs():
    results = (ROOT / "benchmarks/RESULTS.md").read_text()
    stated = re.findall(r"top-k singular directions, k = (\d+)", results)
    assert stated and all(int(k) == DEFAULT_K for k in stated)


def test_the_readme_says_how_intervals_are_paired():
    readme = (ROOT / "README.md").read_text()
    assert "paired with LoRA)" not in readme and "paired by seed" in readme


def test_no_retracted_noise_figure_is_left_as_a_fragment():
    results = (ROOT / "benchmarks/RESULTS.md").read_text()
    assert "points are noise (evaluation noise alone is ~2-3 points)" not in results
