"""The documentation: the MkDocs site builds strictly, and its reference tables match the code.

The reference tables in docs/ are rendered from the models by docs/hooks.py at build time.
The same expansion runs here without MkDocs, so a field, event or option added to the code
without a description fails the tests even where MkDocs is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import BaseModel

from autoresearch import ResearchConfig
from autoresearch.events import EVENT_MODELS
from autoresearch.results import CycleResult, RunRecord
from autoresearch.workspace import ResearchState

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _hooks()


def expanded(page: str) -> str:
    text: str = hooks.expand((DOCS / page).read_text(encoding="utf-8"), where=page)
    assert "<!-- fields" not in text and "<!-- events" not in text and "<!-- options" not in text
    return text


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.skip("mkdocs and mkdocs-material are not installed (pip install -e '.[docs]')")
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    sdk = (site / "sdk" / "index.html").read_text(encoding="utf-8")
    for name in ResearchConfig.model_fields:
        assert f"<code>{name}</code>" in sdk, name
    for name in EVENT_MODELS:
        assert f"<code>{name}</code>" in sdk, name
    for page in ("reliability", "migration", "recipes/gpu-training", "recipes/sharing-results"):
        assert (site / page / "index.html").is_file(), page
    assert (site / "recipes" / "progress.png").is_file()
    assert not (site / "hooks.py").exists()


def _rows(text: str, header: str) -> list[list[str]]:
    start = text.index(header)
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


@pytest.mark.parametrize("model", [ResearchConfig, CycleResult])
def test_sdk_field_tables_list_every_field_with_its_default(model: type[BaseModel]) -> None:
    text = expanded("sdk.md")
    tables = text.split("| field | alias | type | default | meaning |")[1:]
    table = next(t for t in tables if all(f"| `{n}` |" in t for n in model.model_fields))
    rows = _rows("| field | alias | type | default | meaning |" + table, "| field |")
    assert [row[0].strip("`") for row in rows] == list(model.model_fields)
    assert all(row[4] for row in rows), "every field has a meaning"
    if model is ResearchConfig:
        by_name = {row[0].strip("`"): row for row in rows}
        assert by_name["timeout_ms"][1:4] == ["`timeoutMs`", "int", "`600_000`"]
        assert by_name["mutable_paths"][2:4] == ["list of str (at least 1)", "required"]
        assert by_name["max_repairs"][2] == "int (≥ 0, ≤ 10)"


def test_the_events_table_lists_every_event_and_every_payload_field() -> None:
    text = expanded("sdk.md")
    rows = _rows(text, "| name | model | fired when |")
    assert [row[0].strip("`") for row in rows] == list(EVENT_MODELS)
    for row, (name, model) in zip(rows, EVENT_MODELS.items(), strict=True):
        assert row[1] == f"`{model.__name__}`"
        assert row[2], f"{name} says when it fires"
        for field, info in model.model_fields.items():
            if field in ("type", "at", "source"):
                continue
            spelled = f"`{field}`" + (f"/`{info.alias}`" if info.alias != field else "")
            assert spelled in row[3], (name, field)
    stopped = rows[list(EVENT_MODELS).index("autoresearch:stopped")][3]
    assert '`"budget-exhausted"`' in stopped  # generated from StopReason, all seven reasons


@pytest.mark.parametrize(
    ("model", "anchor"),
    [(ResearchState, "### `state.json`"), (RunRecord, "### `runs.jsonl`")],
)
def test_file_key_tables_list_every_key(model: type[BaseModel], anchor: str) -> None:
    text = expanded("concepts.md")
    rows = _rows(text[text.index(anchor) :], "| key | type | meaning |")
    keys = [row[0].strip("`") for row in rows]
    assert keys == [info.alias or name for name, info in model.model_fields.items()]
    assert "None" not in " ".join(row[1] for row in rows)  # JSON says null


def test_cli_option_tables_list_every_option() -> None:
    import typer.main

    from autoresearch.cli import app

    text = expanded("cli.md")
    group = typer.main.get_command(app)
    for command in ("init", "run-once", "run", "results", "reset", "quickstart", "plot", "report"):
        section = text[text.index(f"## `{command}`") :]
        rows = _rows(section, "| option | default | meaning |")
        shown = " ".join(row[0] for row in rows)
        for param in group.commands[command].params:  # type: ignore[attr-defined]
            key = hooks._param_key(param)
            assert f"`{key}" in shown, (command, key)


class Sample(BaseModel):
    """A model for the drift tests."""

    documented: int = 1
    """Has a docstring, so it needs no bullet."""
    bare: str = "x"


def test_drift_stops_the_build_with_a_message_naming_it() -> None:
    block = "<!-- fields: tests.test_docs_build.Sample -->\n{}<!-- /fields -->\n"
    with pytest.raises(hooks.DocsDriftError, match=r"Sample\.bare has no description"):
        hooks.expand(block.format(""), where="page.md")
    table = hooks.expand(block.format("- `bare`: A string.\n"), where="page.md")
    assert "| `documented` |  | int | `1` | Has a docstring, so it needs no bullet. |" in table
    assert '| `bare` |  | str | `"x"` | A string. |' in table
    with pytest.raises(hooks.DocsDriftError, match=r"renamed is not a field of Sample"):
        hooks.expand(block.format("- `bare`: A.\n- `renamed`: B.\n"), where="page.md")
    with pytest.raises(hooks.DocsDriftError, match=r"not described: autoresearch:cycle:start"):
        hooks.expand("<!-- events -->\n<!-- /events -->\n", where="page.md")
    with pytest.raises(hooks.DocsDriftError, match=r"has no --no-such-flag"):
        hooks.expand("<!-- options: run -->\n- `--no-such-flag`: x\n<!-- /options -->\n")
