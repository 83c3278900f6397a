"""A metric is read exactly or not at all: real runs through a real worker, the CLI and the ledger.

Every run here is a real subprocess in a real git repository; the scripted proposer only
changes which lines the experiment prints.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import regex
from typer.testing import CliRunner

from autoresearch import Edit, MetricSpec, ScriptedStep
from autoresearch.cli import app
from autoresearch.cli.render import fmt_metric
from autoresearch.metrics import (
    MetricMisreadError,
    find_last_match,
    find_last_number,
    format_metric,
    parse_number,
)
from autoresearch.results import RunRecord
from autoresearch.workspace import format_tsv_row
from tests.conftest import PY, git, make_repo
from tests.test_worker import worker_for

DIGITS = r"^val_loss:\s+([\d.]+)"  # the documented pattern that misread 1e-05 as 1.0
EXACT = r"^val_loss:\s+([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"


def script(*lines: str) -> str:
    """An experiment that prints ``lines`` after some chatter."""
    return f"print('training...')\nfor line in {list(lines)!r}:\n    print(line)\n"


def prints(*lines: str) -> ScriptedStep:
    """A step that makes the experiment print ``lines``."""
    return ScriptedStep(
        description=f"print {lines[0]!r}",
        edits=lambda context: [Edit(path="train.py", content=script(*lines))],
    )


def repo_printing(tmp_path: Path, *lines: str) -> Path:
    return make_repo(
        tmp_path / "repo", {"train.py": script(*lines), "program.md": "# Program\nLower it.\n"}
    )


def metric(pattern: str | None = DIGITS, name: str = "val_loss", **more: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "direction": "lower", **more}
    if pattern is not None:
        spec["pattern"] = pattern
    return spec


def tsv_rows(repo: Path) -> list[list[str]]:
    lines = (repo / ".autoresearch" / "results.tsv").read_text().splitlines()
    return [line.split("\t") for line in lines[1:]]


@pytest.mark.anyio
async def test_exponent_misread_by_digit_pattern_is_a_crash_naming_line_and_fix(
    tmp_path: Path,
) -> None:
    repo = repo_printing(tmp_path, "val_loss: 2.0")
    worker = worker_for(repo, [prints("val_loss: 1e-05")], metric=metric())
    base = await worker.run_experiment_cycle()
    assert base.status == "keep"

    misread = await worker.run_experiment_cycle()  # the old engine read 1.0 and kept it
    assert misread.status == "crash"
    assert misread.metric_value is None
    assert "'val_loss: 1e-05'" in misread.description  # the offending line, quoted
    assert "exponent ('e-05')" in misread.description
    assert f"e.g. '{EXACT}'" in misread.description  # a pattern that reads it
    assert git(repo, "rev-parse", "HEAD") == base.commit_hash  # nothing wrong was kept

    # The named pattern reads the same log exactly.
    suggested = misread.description.split("e.g. '", 1)[1].split("'")[0]
    log = worker.workspace.log_path(misread.cycle)
    assert parse_number(await find_last_match(suggested, log) or "") == pytest.approx(1e-05)


@pytest.mark.anyio
async def test_thousands_separators_are_a_crash_unless_captured(tmp_path: Path) -> None:
    pattern = r"^tokens_per_sec:\s+([\d.]+)"
    spec = metric(pattern, name="tokens_per_sec", direction="higher")
    repo = repo_printing(tmp_path, "tokens_per_sec: 950.5")
    worker = worker_for(repo, [prints("tokens_per_sec: 1,200,000.5")], metric=spec)
    assert (await worker.run_experiment_cycle()).status == "keep"

    misread = await worker.run_experiment_cycle()  # the old engine read 1.0
    assert misread.status == "crash"
    assert "'tokens_per_sec: 1,200,000.5'" in misread.description
    assert "digit-group commas" in misread.description
    suggested = misread.description.split("e.g. '", 1)[1].split("'")[0]
    assert suggested == r"^tokens_per_sec:\s+(\d{1,3}(?:,\d{3})*(?:\.\d+)?)"
    log = worker.workspace.log_path(misread.cycle)
    assert await find_last_number(suggested, log) == 1_200_000.5


@pytest.mark.anyio
async def test_captured_digit_groups_parse_only_when_well_formed(tmp_path: Path) -> None:
    spec = metric(r"^tokens_per_sec:\s+([\d,.]+)", name="tokens_per_sec", direction="higher")
    repo = repo_printing(tmp_path, "tokens_per_sec: 950.5")
    steps = [prints("tokens_per_sec: 1,200,000.5"), prints("tokens_per_sec: 12,34,567")]
    worker = worker_for(repo, steps, metric=spec)
    assert (await worker.run_experiment_cycle()).status == "keep"

    grouped = await worker.run_experiment_cycle()  # the old engine could not parse it
    assert (grouped.status, grouped.metric_value) == ("keep", 1_200_000.5)
    malformed = await worker.run_experiment_cycle()
    assert malformed.status == "crash"
    assert "not a finite number ('12,34,567')" in malformed.description


@pytest.mark.anyio
async def test_plain_decimals_still_keep_and_tiny_values_are_written_exactly(
    tmp_path: Path,
) -> None:
    repo = repo_printing(tmp_path, "val_loss: 0.9")
    steps = [prints("val_loss: 0.5"), prints("val_loss: 0.00003")]
    worker = worker_for(repo, steps, metric=metric())
    results = [await worker.run_experiment_cycle() for _ in range(3)]
    assert [r.status for r in results] == ["keep", "keep", "keep"]
    assert [r.metric_value for r in results] == [0.9, 0.5, 0.00003]
    # results.tsv wrote 0.000030 before; the ledger now keeps the value's own digits.
    assert [row[1] for row in tsv_rows(repo)] == ["0.900000", "0.500000", "3e-05"]


@pytest.mark.anyio
async def test_memory_pattern_misread_is_a_crash(tmp_path: Path) -> None:
    repo = repo_printing(tmp_path, "val_loss: 2.0", "peak_vram_mb: 2048.0")
    step = prints("val_loss: 1.0", "peak_vram_mb: 2.5e+3")
    memory = {"pattern": r"^peak_vram_mb:\s+([\d.]+)", "unit": "mb"}
    worker = worker_for(repo, [step], metric=metric(), memory=memory)
    base = await worker.run_experiment_cycle()
    assert base.memory_gb == pytest.approx(2.0)

    result = await worker.run_experiment_cycle()  # the old engine recorded 2.5 MB and kept it
    assert result.status == "crash"
    assert "'peak_vram_mb: 2.5e+3'" in result.description
    assert r"'^peak_vram_mb:\s+([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)'" in result.description


@pytest.mark.anyio
async def test_default_pattern_from_name_reads_signs_exponents_and_bare_fractions(
    tmp_path: Path,
) -> None:
    # The last line shares the prefix but is another metric: it must not be read.
    repo = repo_printing(tmp_path, "val_loss=2.0E+3", "val_loss_ema: 0.1")
    steps = [prints(" val_loss: .5"), prints("\tval_loss = -3.5e-06", "step 3 val_loss: -9")]
    worker = worker_for(repo, steps, metric=metric(pattern=None))
    assert worker.config.metric.pattern == MetricSpec.default_pattern("val_loss")

    results = [await worker.run_experiment_cycle() for _ in range(3)]
    assert [r.status for r in results] == ["keep", "keep", "keep"]
    assert [r.metric_value for r in results] == [2000.0, 0.5, -3.5e-06]


def test_default_pattern_escapes_the_name() -> None:
    spec = MetricSpec(name="loss.v2")
    assert spec.pattern == MetricSpec.default_pattern("loss.v2")
    compiled = regex.compile(spec.pattern, regex.MULTILINE)
    assert compiled.search("lossXv2: 1") is None
    match = compiled.search("loss.v2: 1")
    assert match is not None and match.group(1) == "1"


def test_cli_init_with_only_metric_name_reads_exponents(tmp_path: Path) -> None:
    repo = repo_printing(tmp_path, "val_loss: 3.03e-06")
    args = ["--target", "train.py", "--run-command", f"{PY} train.py", "--tag", "t1"]
    runner = CliRunner()
    result = runner.invoke(app, ["init", str(repo), *args, "--metric-name", "val_loss"])
    assert result.exit_code == 0, result.output

    config = json.loads((repo / ".autoresearch" / "config.json").read_text())
    pattern = config["metric"]["pattern"]
    assert pattern == MetricSpec.default_pattern("val_loss")
    found = re.search(pattern, "val_loss: 1e-05", re.MULTILINE)
    assert found is not None and found.group(1) == "1e-05"

    result = runner.invoke(app, ["run-once", str(repo)])
    assert result.exit_code == 0, result.output
    assert "val_loss=3.03e-06" in result.stdout  # not 0.000003


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("pattern", "line", "why"),
    [
        (r"^loss: (\d\.\d{2})", "loss: 0.12345", "the number goes on ('345')"),
        (r"^val_loss:\D*([\d.]+)", "val_loss: -0.5", "the sign ('-') is left out"),
        (r"^loss: \d([\d.]+)", "loss: 12.5", "the number starts before the capture"),
        (r"^val_loss:\s+([\d,]+)", "val_loss: 1,250.75", "the number goes on ('.75')"),
        (r"^loss: (\d+)", "loss: 5.e-3", "the number goes on with an exponent ('.e-3')"),
    ],
)
async def test_partial_captures_raise_misread(
    tmp_path: Path, pattern: str, line: str, why: str
) -> None:
    log = tmp_path / "run.log"
    log.write_text(f"start\n{line}\nend\n")
    with pytest.raises(MetricMisreadError) as caught:
        await find_last_match(pattern, log)
    assert why in str(caught.value) and repr(line) in str(caught.value)


@pytest.mark.anyio
async def test_misread_quotes_a_long_line_shortened(tmp_path: Path) -> None:
    line = "x" * 500 + " val_loss: 1e-05 " + "y" * 500
    log = tmp_path / "run.log"
    log.write_text(f"{line}\n")
    with pytest.raises(MetricMisreadError) as caught:
        await find_last_match(r"val_loss:\s+([\d.]+)", log)
    message = str(caught.value)
    assert "val_loss: 1e-05" in message and "…" in message
    assert len(message) < 400


@pytest.mark.anyio
async def test_a_comma_the_pattern_expects_is_a_separator(tmp_path: Path) -> None:
    csv = tmp_path / "run.csv"
    csv.write_text("3,0.5,100\n5,100\n")
    assert await find_last_match(r"^\d+,([\d.]+),", csv) == "0.5"
    assert await find_last_match(r"^(\d+),\d+$", csv) == "5"
    with pytest.raises(MetricMisreadError):  # the group stops at a comma the pattern ignores
        await find_last_match(r"^(\d+)", csv)


def test_parse_number_is_strict_and_exact() -> None:
    assert parse_number(" 1,200,000.5 ") == 1_200_000.5
    assert parse_number("1_200_000") == 1_200_000.0
    assert parse_number("-3.5e-06") == -3.5e-06
    assert parse_number(".5") == 0.5
    for text in ("1_0", "1,2", "12,34,567", "1,000_000", "0.5s", "١٢", "nan", "-inf", "1e999", ""):
        assert parse_number(text) is None, text


def test_fmt_metric_writes_numbers_as_people_do() -> None:
    assert fmt_metric(None) == "-"
    assert fmt_metric(0.985) == "0.985000"
    assert fmt_metric(0.0) == "0.000000"
    assert fmt_metric(0.001) == "0.001000"
    assert fmt_metric(123456.5) == "123456.500000"
    assert fmt_metric(3.03e-06) == "3.03e-06"
    assert fmt_metric(-2e-4) == "-0.0002"
    assert fmt_metric(1e30) == "1e+30"
    assert fmt_metric(12345678.0) == "12345678.0"
    assert format_metric(3.03e-06) == fmt_metric(3.03e-06)


def test_tsv_row_metric_column() -> None:
    def column(value: float | None) -> str:
        record = RunRecord(
            cycle=2, commit="abcdef0123", status="keep", metric=value, started_at="2025-01-01"
        )
        return format_tsv_row(record).split("\t")[1]

    assert column(1e-05) == "1e-05"  # was 0.000000, the same as "no metric"
    assert column(1e30) == "1e+30"
    assert column(0.985) == "0.985000"
    assert column(None) == "0.000000"
