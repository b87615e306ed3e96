"""Hostile completions and golds never crash or hang the pool: each scores 0 within the deadline."""

import time

import pytest

from rlvr.config.schema import RewardConfig
from rlvr.rewards.pool import RewardItem, RewardPool

MB = 1 << 20


def _cases() -> list[tuple[str, str]]:
    """(completion, gold) pairs whose completion is wrong or unreadable, so every reward must be 0."""
    comps = [
        "x" * MB,
        "{" * MB,
        "}" * MB,
        "\\boxed{" * 20000,
        "\\boxed{" + "{" * 50000,
        "\\boxed{1" + "}" * 50000,
        "\\boxed{" + "{" * 5000 + "}" * 4999,
        "\\boxed{" + "(" * 5000 + "1" + ")" * 5000 + "}",
        "\\boxed{" + "\\frac{" * 2000 + "1" + "}{2}" * 2000 + "}",
        "\\boxed{" + "\\sqrt{" * 3000 + "2" + "}" * 3000 + "}",
        "$" * MB,
        "\\" * MB,
        "\\boxed{9^9^9^9}",
        "\\boxed{9^{9^{9^{9}}}}",
        "\\boxed{10^{10^{10^{10^{10}}}}}",
        "\\boxed{2^{2^{2^{2^{2^{2^{2}}}}}}}",
        "\\boxed{(10^{100})!}",
        "\\boxed{1000000!}",
        "\\boxed{99999999999!!}",
        "\\boxed{\\binom{10^{12}}{10^{6}}}",
        "\\boxed{\\sum_{n=1}^{10^{12}} n^n}",
        "\\boxed{\\prod_{k=1}^{10^{9}} k}",
        "\\boxed{\\int_0^\\infty e^{-x^{x^x}} dx}",
        "\\boxed{\\lim_{x\\to\\infty} x^{x^{x}}}",
        "\\boxed{e^{e^{e^{e^{e^{e}}}}}}",
        "\\boxed{\\sin(\\sin(\\sin(\\sin(\\sin(\\sin(10^{100}))))))}",
        "\\boxed{(x+1)^{100000}}",
        "\\boxed{\\begin{pmatrix}" + "1 & " * 300 + "1 \\end{pmatrix}^{1000}}",
        "\\boxed{" + "+".join(f"x_{{{i}}}^{{{i}}}" for i in range(2000)) + "}",
        "\\boxed{" + "1" * 100000 + "}",
        "\\boxed{0." + "9" * 100000 + "}",
        "\\boxed{1e999999999}",
        "\\boxed{10^{-999999999}}",
        "\\boxed{\\infty - \\infty}",
        "\\boxed{0/0}",
        "\\boxed{\\frac{1}{0}}",
        "\\boxed{\\log(0)}",
        "\\boxed{\\sqrt{-1}^{\\sqrt{-1}}}",
        "\\boxed{\x00}",
        "\x00" * 1000,
        "\\boxed{1\x002}",
        "\\boxed{\ud800}",
        "\\boxed{\U0001f600}",
        "\\boxed{\u202e12}",
        "\\boxed{\u200b\u200b}",
        "\\boxed{\ufeff}",
        "\\boxed{٣}",
        "\\boxed{\u2167}",
        "\\boxed{①}",
        "\\boxed{𝟛}",
        "\\boxed{½}",
        "\\boxed{∞}",
        "\\boxed{√2}",
        "\\boxed{\\u0000}",
        "\\boxed{\r\n\t\x0b\x0c}",
        "\\boxed{}",
        "\\boxed{ }",
        "\\boxed",
        "\\boxed{",
        "}\\boxed{",
        "\\boxed{\\}",
        "\\boxed{\\{\\{\\{}",
        "\\boxed{\\left( \\right.}",
        "\\boxed{\\left(\\left(\\left(}",
        "\\boxed{\\begin{pmatrix}}",
        "\\boxed{\\begin{array}{c}1\\\\2}",
        "\\boxed{\\end{document}}",
        "\\boxed{\\def\\x{\\x}\\x}",
        "\\boxed{\\newcommand{\\a}{\\a\\a}\\a}",
        "\\boxed{\\input{/etc/passwd}}",
        "\\boxed{__import__('os').system('true')}",
        "\\boxed{eval('1+1')}",
        "\\boxed{lambda: 0}",
        "\\boxed{x" + "'" * 5000 + "}",
        "\\boxed{" + "-" * 100000 + "1}",
        "\\boxed{" + "\\!" * 50000 + "}",
        "\\boxed{" + "^" * 10000 + "}",
        "\\boxed{" + "_" * 10000 + "}",
        "\\boxed{a_{" * 3000 + "}" * 3000 + "}",
        "\\boxed{" + "|" * 10000 + "}",
        "\\boxed{" + "[" * 10000 + "}",
        "\\boxed{" + "(1," * 10000 + "}",
        "\\boxed{" + ",".join(["1"] * 50000) + "}",
        "\\boxed{" + "\\cup".join(["(1,2)"] * 3000) + "}",
        "\\boxed{" + "=".join(["x"] * 5000) + "}",
        "\\boxed{" + "<".join(["x"] * 5000) + "}",
        "\\boxed{x^{" + "x^{" * 500 + "}" * 501 + "}",
        "$" + "\\frac{1}{" * 500 + "$",
        "The final answer is $" + "9^" * 200 + "9$",
        "Answer: " + "9^" * 200 + "9",
        "\\[" * 10000,
        "\\(" * 10000 + "\\)" * 10000,
        "\\boxed{\\text{" * 3000 + "}",
        "\\boxed{\\mathrm{" * 3000 + "}" * 3000 + "}",
        "\\boxed{\\operatorname{" * 1000 + "}",
        "\\boxed{\\sqrt[" * 1000 + "}",
        "\\boxed{\\frac{\\frac{\\frac{}{}}{}}{}}",
        "\\boxed{\\matrix{" * 500 + "}",
        "<think>" * 10000 + "\\boxed{1}",
        "</think>" * 10000,
        "\\boxed{\\boxed{\\boxed{\\boxed{0}}}}",
        "\\boxed{1}" * 20000,
        "\\boxed{Float('nan')}",
        "\\boxed{nan}",
        "\\boxed{NaN} \\boxed{inf}",
        "\\boxed{\\mathbb{Z}^{\\mathbb{R}}}",
        "\\boxed{\\aleph_0^{\\aleph_0}}",
        "\\boxed{\\zeta(10^{100})}",
        "\\boxed{\\Gamma(10^{20})}",
        "\\boxed{\\tan(\\pi/2)}",
        "\\boxed{i^{i^{i^{i}}}}",
        "\\boxed{(-1)^{1/3}}",
        "\\boxed{\\text{" + "a" * MB + "}}",
    ]
    golds = ["3", "\\frac{1}{2}", "(1, 2]", "\\{1, 2\\}", "x = 5", "\\text{(A)}", "90^\\circ"]
    out = [(c, golds[i % len(golds)]) for i, c in enumerate(comps)]
    # Hostile golds: unparseable or huge; a correct-looking completion must still score 0 against them.
    out += [
        ("\\boxed{3}", "9^{9^{9^{9}}}"),
        ("\\boxed{3}", "{" * 10000),
        ("\\boxed{3}", "\\boxed{"),
        ("\\boxed{3}", "\x00"),
        ("\\boxed{3}", ""),
        ("\\boxed{3}", "1000000!"),
        ("\\boxed{3}", "\\frac{" * 1000),
    ]
    return out


@pytest.mark.slow
def test_more_than_100_hostile_inputs_score_zero_within_the_deadline_in_one_batch():
    # A short deadline: about a third of these are cut off, each costing one deadline of one worker.
    with RewardPool(RewardConfig(workers=2, timeout_s=0.5)) as pool:
        _check_hostile_batch(pool)


def _check_hostile_batch(pool):
    cases = _cases()
    assert len(cases) >= 100
    t0 = time.monotonic()
    results = pool.score([RewardItem(c, g) for c, g in cases])
    elapsed = time.monotonic() - t0
    assert len(results) == len(cases)
    wrong = [(c[:60], g[:30], r) for (c, g), r in zip(cases, results) if r.reward != 0.0 or r.correct]
    assert not wrong, wrong
    # Every item finishes or is cut off at its deadline: the batch is bounded by the deadline, not the input.
    timeouts = sum(r.timed_out for r in results)
    slots = len(pool._workers)
    assert elapsed < (timeouts / slots + 1) * pool.cfg.timeout_s + len(cases) * 0.2
    # The pool is still healthy afterwards.
    [after] = pool.score([RewardItem("\\boxed{\\frac{1}{2}}", "0.5")])
    assert after.correct and not after.timed_out
