"""The HTML + Markdown report of a synthetic run, checked as files and as a page rendered by headless Chromium."""

import html
import json
import re
import subprocess
from pathlib import Path

import pytest

from rlvr.analysis.report import build_report

from .fake_run import make_run

SECTIONS = [
    "answer",
    "overview",
    "results",
    "baseline",
    "findings",
    "frontier",
    "curves",
    "spectral",
    "published",
    "trials",
]
PLOTTED = ["frontier", "curves", "spectral"]
CHROMIUM = Path("/usr/bin/chromium")
# Runs after every image has loaded and records what the browser made of each section.
PROBE = """<script>
window.addEventListener('load', () => {
  const out = [...document.querySelectorAll('section')].map(s => ({
    id: s.id, title: s.querySelector('h2').textContent,
    images: [...s.querySelectorAll('img')].map(i => [i.naturalWidth, i.naturalHeight, i.src.length, i.width]),
    captions: s.querySelectorAll('p.caption').length,
    rows: s.querySelectorAll('tr').length}));
  const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    return build_report(str(make_run(root)), root / "out")


def test_html_has_every_section_with_embedded_figures(report):
    page = report[0].read_text()
    assert [s for s in SECTIONS if f'<section id="{s}">' in page] == SECTIONS
    for key in PLOTTED:
        section = page.split(f'<section id="{key}">')[1].split("</section>")[0]
        assert re.search(r'src="data:image/png;base64,[A-Za-z0-9+/=]{2000,}"', section), key
    text = re.sub(r'src="data:[^"]*"', "", page)
    assert not re.search(r"\bnan\b", text, re.I), "a missing value leaked into the page as NaN"


def test_markdown_links_figures_that_exist(report):
    md_path = report[1]
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md_path.read_text())
    assert len(links) == 4  # frontier, curves, lengths, spectral
    for link in links:
        assert (md_path.parent / link).stat().st_size > 2000


def test_baseline_section_has_the_base_row_differences_and_learning_rates(report):
    section = report[0].read_text().split('<section id="baseline">')[1].split("</section>")[0]
    cells = re.findall(r"<td>(.*?)</td>", section)
    assert cells[:7] == ["base (step 0)", "—", "—", "—", "42.5", "ref", "—"]
    assert "42.5 → 1.5" in cells and "-41.0" in cells, "PiSSA ends 41 points below the base"
    assert "1e-5" in cells
    md = report[1].read_text()
    assert "| base (step 0) |" in md and "Δ base" in md


def test_curves_section_plots_length_truncation_and_overlong_penalty(report):
    section = report[0].read_text().split('<section id="curves">')[1].split("</section>")[0]
    assert len(re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]{2000,}"', section)) == 2
    assert "cut off at the completion limit" in section and "penalty overlong shaping added" in section


def test_every_figure_has_a_sentence_under_it(report):
    page = report[0].read_text()
    assert len(re.findall(r"<img ", page)) == len(re.findall(r'<p class="caption">', page)) >= 3


def test_missing_spectral_data_is_stated(tmp_path):
    html_path, md_path = build_report(str(make_run(tmp_path, with_spectral=False)), tmp_path / "out")
    section = html_path.read_text().split('<section id="spectral">')[1].split("</section>")[0]
    assert "No spectral data" in section and "<img" not in section
    assert "rlvr analyze spectral" in md_path.read_text()


def test_a_folder_that_is_not_a_run_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a sweep run directory"):
        build_report(str(tmp_path), tmp_path / "out")


def _chromium(*args: str, cwd: Path) -> str:
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--user-data-dir={cwd / 'profile'}",
        "--virtual-time-budget=10000",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout


@pytest.mark.slow
@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)"
)
def test_page_renders_every_section_with_nonempty_plots_in_chromium(report, tmp_path):
    page = tmp_path / "probe.html"
    page.write_text(report[0].read_text().replace("</body>", PROBE + "</body>"))
    dom = _chromium("--dump-dom", page.as_uri(), cwd=tmp_path)
    probe = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert probe, "the probe script did not run"
    sections = {s["id"]: s for s in json.loads(html.unescape(probe.group(1)))}
    assert list(sections) == SECTIONS
    for key in PLOTTED:
        assert sections[key]["images"], key
        assert sections[key]["captions"] == len(sections[key]["images"]), f"{key}: a figure without its sentence"
        for width, height, src_len, shown in sections[key]["images"]:
            assert width > 400 and height > 250 and src_len > 2000 and shown > 400, key
    assert sections["baseline"]["rows"] == 1 + 1 + 6, "header, base row and one row per configuration"

    shot = tmp_path / "shot.png"
    _chromium(f"--screenshot={shot}", "--window-size=1400,2400", report[0].as_uri(), cwd=tmp_path)
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (2400, 1400) and pixels[..., :3].std() > 0.05, "the screenshot is blank"


def test_report_command_defaults_to_a_report_folder_inside_a_local_run(tmp_path):
    from rlvr.analysis.cli import report_command

    run = make_run(tmp_path, with_spectral=False)
    html_path, md_path = report_command(str(run))
    assert html_path == run / "report" / "report.html" and md_path.exists()


def test_spectral_command_refuses_a_folder_that_is_neither_trial_nor_run(tmp_path):
    from rlvr.analysis.cli import spectral_command

    with pytest.raises(FileNotFoundError, match="neither a trial directory"):
        spectral_command(str(tmp_path))


def test_a_run_of_one_seed_per_method_says_it_cannot_rank_and_names_the_command_that_can(report):
    from rlvr.analysis.findings import RANKING_COMMAND

    findings = report[1].read_text().split("## Findings")[1].split("\n## ")[0]
    assert "One seed per method cannot rank methods" in findings and f"`{RANKING_COMMAND}`" in findings
    assert "| holds |" not in findings and "| contradicted |" not in findings


def test_the_trials_section_says_which_trials_shared_a_pool(tmp_path):
    run = make_run(tmp_path, with_spectral=False)
    for slot, trial_id in enumerate(["aaaaaaaaaa01", "aaaaaaaaaa05"]):  # LoRA seed 1 and VeRA, tenants together
        path = run / "ledger" / f"{trial_id}.json"
        entry = json.loads(path.read_text())
        attempt = {"attempt": 1, "pool": "pool-7", "slot": slot, "started_at": 100.0 + slot, "ended_at": 200.0}
        path.write_text(json.dumps({**entry, "pool": "pool-7", "slot": slot, "history": [attempt]}))
    _, md = build_report(str(run), tmp_path / "out")
    trials = md.read_text().split("## Trials")[1]
    assert "Shared pools" in trials and "pool-7: DeepSeek-R1-Distill" in trials
    shared = trials.split("pool-7: ")[1].split(".\n")[0]
    assert "lora/seed1" in shared and "vera/seed1" in shared and "seed2" not in shared
    assert "| pool-7/0 |" in trials and "| pool-7/1 |" in trials
