"""The progress chart and the HTML report, drawn from a real short research run."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from autoresearch import Edit, ScriptedStep
from autoresearch.cli import app
from autoresearch.plot import (
    MissingMatplotlibError,
    load_progress,
    plot_svg,
    render_plot,
    summarize,
)
from autoresearch.report import load_report, render_report
from tests.conftest import TRAIN, make_repo, snapshot, tool
from tests.test_worker import set_x, worker_for

runner = CliRunner()
SCRIPT_DESCRIPTION = "<script>alert('x')</script> & \"quotes\""


def _broken() -> ScriptedStep:
    text = TRAIN.replace("EXIT = 0", "EXIT = 3")
    return ScriptedStep(description="exit with 3", edits=[Edit(path="train.py", content=text)])


def _hostile() -> ScriptedStep:
    text = TRAIN.replace("X = 3.0", "X = 1.25  # <b>bold</b> & <script>")
    return ScriptedStep(description=SCRIPT_DESCRIPTION, edits=[Edit(path="train.py", content=text)])


@pytest.fixture(scope="module")
def researched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repo after six real cycles: baseline, keep, discard, crash, keep (hostile text), keep."""
    repo = make_repo(
        tmp_path_factory.mktemp("plot") / "repo",
        {"train.py": TRAIN, "program.md": "# Research program\nMake val_bpb lower.\n"},
    )
    steps = [set_x(2.0), set_x(2.5), _broken(), _hostile(), set_x(1.1)]

    async def main() -> None:
        worker = worker_for(repo, steps)
        await worker.run(max_cycles=6)
        await worker.aclose()

    anyio.run(main)
    return repo


def _progress(repo: Path):  # type: ignore[no-untyped-def]
    return anyio.run(load_progress, repo)


def test_summary_counts(researched: Path) -> None:
    progress = _progress(researched)
    assert [r.status for r in progress.records] == [
        "keep",
        "keep",
        "discard",
        "crash",
        "keep",
        "keep",
    ]
    summary = summarize(progress.records)
    assert (summary.cycles, summary.kept, summary.improvements) == (6, 4, 3)
    assert (summary.discarded, summary.crashed, summary.failures) == (1, 1, 1)
    assert summary.baseline == pytest.approx(5.0)
    assert summary.best == pytest.approx(1.01)
    assert summary.best_cycle == 6
    assert summary.change_pct == pytest.approx(-79.8)


@pytest.mark.parametrize("name", ["progress.png", "progress.svg"])
def test_plot_writes_png_and_svg(researched: Path, tmp_path: Path, name: str) -> None:
    pytest.importorskip("matplotlib")
    before = snapshot(researched)
    result = runner.invoke(app, ["plot", str(researched), "-o", str(tmp_path / name)])
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / name} (6 cycles, 4 kept)" in result.stdout
    data = (tmp_path / name).read_bytes()
    if name.endswith(".png"):
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(data) > 20_000
    else:
        text = data.decode()
        assert "<svg" in text
        assert "X -&gt; 2.0" in text or "X -> 2.0" in text  # a kept change is labelled
    assert snapshot(researched) == before  # drawing only reads


def test_plot_labels_kept_changes_and_the_title_counts(researched: Path) -> None:
    pytest.importorskip("matplotlib")
    progress = _progress(researched)
    svg = plot_svg(progress.records, progress.metric, progress.direction, branch=progress.branch)
    assert svg.startswith("<svg")
    text = re.sub(r"\s+", " ", svg)
    assert "autoresearch/t1: val_bpb 5 → 1.01 (-79.8%)" in text
    assert "6 cycles · 3 improvements kept · 1 discarded · 1 crashed" in text
    for label in ("#2 X -&gt; 2.0", "#6 X -&gt; 1.1", "baseline 5", "best 1.01 (cycle 6)"):
        assert label in text
    assert "#3 X -&gt; 2.5" not in text  # discarded runs are not labelled
    assert "&lt;script&gt;" in text and "<script" not in text


def test_plot_higher_is_better_and_a_single_cycle(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from autoresearch import RunRecord

    records = [
        RunRecord(
            cycle=1, commit="a" * 40, status="keep", metric=0.5, started_at="x", baseline=True
        ),
    ]
    out = render_plot(records, "accuracy", "higher", tmp_path / "one.png")
    assert out.stat().st_size > 10_000
    records += [
        RunRecord(cycle=2, commit="b" * 40, status="keep", metric=0.7, started_at="x"),
        RunRecord(cycle=3, commit="c" * 40, status="timeout", started_at="x"),
        RunRecord(cycle=4, commit="d" * 40, status="discard", metric=-40.0, started_at="x"),
    ]
    svg = plot_svg(records, "accuracy", "higher")
    assert "accuracy (higher is better)" in svg
    assert "1 timed out" in svg


def test_plot_refuses_an_unknown_extension(researched: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["plot", str(researched), "-o", str(tmp_path / "chart.bmp")])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: output: cannot write .bmp;")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "chart.bmp").exists()


def test_missing_matplotlib_is_one_line_with_the_install_command(
    researched: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # any import of it now fails
    progress = _progress(researched)
    with pytest.raises(MissingMatplotlibError, match=r"pip install 'autoresearch\[plot\]'"):
        render_plot(progress.records, progress.metric, progress.direction, tmp_path / "p.png")
    result = runner.invoke(app, ["plot", str(researched), "-o", str(tmp_path / "p.png")])
    assert result.exit_code == 1
    assert result.stderr == (
        "error: drawing the chart needs matplotlib, which is not installed: "
        "pip install 'autoresearch[plot]'\n"
    )
    assert not (tmp_path / "p.png").exists()
    # The report is still written, with a note where the chart would be.
    result = runner.invoke(app, ["report", str(researched), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert "pip install 'autoresearch[plot]'" in result.stderr
    page = (tmp_path / "r.html").read_text()
    assert "<svg" not in page and "pip install &#x27;autoresearch[plot]&#x27;" in page


def test_nothing_to_plot_and_not_initialised(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "empty", {"train.py": TRAIN})
    result = runner.invoke(app, ["plot", str(repo), "-o", str(tmp_path / "p.png")])
    assert result.exit_code == 2
    assert "is not initialised for autoresearch" in result.stderr
    (repo / ".autoresearch").mkdir()
    (repo / ".autoresearch" / "config.json").write_text(
        '{"mutablePaths": ["train.py"], "runCommand": "true", '
        '"metric": {"name": "m", "pattern": "m: (\\\\S+)"}}'
    )
    for command, name in (("plot", "p.png"), ("report", "r.html")):
        result = runner.invoke(app, [command, str(repo), "-o", str(tmp_path / name)])
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("error: nothing to draw: ")
        assert "has no finished cycle yet" in result.stderr
        assert not (tmp_path / name).exists()


def test_report_has_table_diffs_no_links_and_escapes(researched: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    before = snapshot(researched)
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(researched), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    page = out.read_text()
    assert snapshot(researched) == before

    rows = re.findall(r"<tr class=\"(\w+)\">", page)
    assert rows == ["keep", "keep", "discard", "crash", "keep", "keep"]
    assert "exit with 3 (exit code 3)" in page
    assert "5.000000" in page and "1.010000" in page and "-79.80%" in page
    # each kept change (not the baseline) with its delta and its diff
    assert page.count('<section class="change"') == 3
    assert '<span class="del">-X = 3.0</span>' in page
    assert '<span class="add">+X = 2.0</span>' in page
    assert '<span class="good">-3.000000</span>' in page  # 5.0 -> 2.0
    assert '<a href="#cycle-2">2</a>' in page
    # the chart is inline, and nothing is fetched from anywhere
    assert "<svg" in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    assert "<link" not in page and "<img" not in page and "@import" not in page
    # everything from the repository is escaped
    assert "<script" not in page and "<b>bold</b>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quotes&quot;" in page
    assert "+X = 1.25  # &lt;b&gt;bold&lt;/b&gt; &amp; &lt;script&gt;" in page


def test_report_sdk_returns_the_document(researched: Path) -> None:
    pytest.importorskip("matplotlib")
    report = anyio.run(load_report, researched)
    assert [c.record.cycle for c in report.changes] == [2, 5, 6]
    assert report.changes[0].delta == pytest.approx(-3.0)
    assert report.changes[0].previous_best == pytest.approx(5.0)
    html = render_report(report)
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")


def test_report_renders_in_headless_chromium(researched: Path, tmp_path: Path) -> None:
    chromium = shutil.which("chromium-browser") or tool("chromium", "chromium")
    pytest.importorskip("matplotlib")
    page = tmp_path / "report.html"
    assert runner.invoke(app, ["report", str(researched), "-o", str(page)]).exit_code == 0
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,1600",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 30_000  # a blank page is a few kilobytes
