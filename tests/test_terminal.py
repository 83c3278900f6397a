"""The CLI as a person sees it: driven in a real terminal of fixed size (tmux), read off its screen.

Each test starts the command in a detached tmux session of a given width and height, waits
(with a generous deadline, never a timing assertion) for what should appear, and checks the
screen: no line wraps, the live panel spans the width, a long description ends in ``…``, a
resumed run shows the ledger, a timeout says so, and Ctrl-C leaves a clean screen with the
"stopping" line visible.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autoresearch.cli import app
from tests.conftest import PY, ROOT, make_repo, tool

runner = CliRunner()

TRAIN = """\
import os, time
LEARNING_RATE_WARMUP_STEPS = 3.0
WEIGHT_DECAY_COEFFICIENT = 2.0
if int(os.environ.get("AUTORESEARCH_CYCLE", "1")) >= int(os.environ.get("SLOW_FROM", "999")):
    time.sleep(120)
loss = (LEARNING_RATE_WARMUP_STEPS - 1) ** 2 + (WEIGHT_DECAY_COEFFICIENT - 4) ** 2 + 1
print(f"val_bpb: {loss:.6f}")
"""

STUBBORN = """\
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # outlives the time limit until SIGKILL
X = 3.0
time.sleep(min(120, 1000 * abs(X - 3.0)))  # any change of X outlives the limit
print(f"val_bpb: {X:.6f}")
"""

PANEL = re.compile(r"[╭╮╰╯│]")


class Terminal:
    """One tmux session of a fixed size, running one shell script."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.tmux = tool("tmux", "tmux")
        self.folder = Path(tempfile.mkdtemp(prefix="ar-tty-", dir="/tmp"))  # short socket path
        self.socket = self.folder / "s"

    def _tmux(self, *args: str) -> str:
        proc = subprocess.run(
            [self.tmux, "-S", str(self.socket), "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert proc.returncode == 0, (args, proc.stderr)
        return proc.stdout

    def start(self, cwd: Path, command: str, env: dict[str, str] | None = None) -> None:
        """Run ``command`` (a shell line); then the exit status and echoctl's state are shown."""
        exports = {"PYTHONPATH": str(ROOT), **(env or {})}
        script = self.folder / "run.sh"
        script.write_text(
            "".join(f"export {k}={shlex.quote(v)}\n" for k, v in exports.items())
            + "unset COLUMNS LINES\n"  # the terminal's own size, not the test runner's
            + "trap : INT\n"  # Ctrl-C is for the command; this shell stays to show the end
            + f"cd {shlex.quote(str(cwd))}\n{command}\ncode=$?\n"
            + "echo \"[exit $code, $(stty -a | grep -o -- '-*echoctl')]\"\n"
            + "exec sleep 600\n"
        )
        self._tmux(
            "new-session", "-d", "-x", str(self.width), "-y", str(self.height),
            "sh", str(script),
        )  # fmt: skip

    def screen(self, *, joined: bool = False) -> list[str]:
        """The visible lines (``joined``: lines the terminal wrapped put back together)."""
        args = ["capture-pane", "-p", *(["-J"] if joined else [])]
        return self._tmux(*args).rstrip("\n").split("\n")

    def wait(self, ready: Callable[[str], bool], what: str, deadline: float = 90) -> list[str]:
        """Poll the screen until ``ready(text)``; fail with the screen after ``deadline`` s."""
        end = time.monotonic() + deadline
        while True:
            lines = self.screen()
            if ready("\n".join(lines)):
                return lines
            if time.monotonic() > end:
                pytest.fail(f"the screen never showed {what}:\n" + "\n".join(lines))
            time.sleep(0.1)

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", *keys)

    def close(self) -> None:
        subprocess.run(
            [self.tmux, "-S", str(self.socket), "kill-server"], capture_output=True, check=False
        )
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def terminal() -> Iterator[Callable[[int, int], Terminal]]:
    opened: list[Terminal] = []

    def open_terminal(width: int, height: int) -> Terminal:
        opened.append(Terminal(width, height))
        return opened[-1]

    yield open_terminal
    for term in opened:
        term.close()


CLI = f"{shlex.quote(PY)} -m autoresearch"


def init(repo: Path, *flags: str) -> str:
    args = ["init", str(repo), "--tag", "tty", "-t", "train.py", "--run-command", f"{PY} train.py",
            "--metric-name", "val_bpb", *flags]  # fmt: skip
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    return done.stdout


def assert_fits(term: Terminal, lines: list[str]) -> None:
    """Nothing on screen wrapped, and every line of the live panel spans the whole width."""
    assert len(term.screen(joined=True)) == len(lines), "a line wrapped:\n" + "\n".join(lines)
    for line in lines:
        if PANEL.match(line):
            assert len(line) == term.width, f"a panel line is {len(line)} wide: {line!r}"


def test_a_live_run_fits_80_columns_and_ctrl_c_leaves_a_clean_screen(
    tmp_path: Path, terminal: Callable[[int, int], Terminal]
) -> None:
    repo = make_repo(tmp_path / "repo", {"train.py": TRAIN})
    init(repo, "--timeout", "200")
    term = terminal(80, 24)
    term.start(repo, f"{CLI} run", env={"SLOW_FROM": "5"})
    lines = term.wait(lambda s: "cycle         5" in s and "execute" in s, "cycle 5 executing")
    assert_fits(term, lines)
    cycle_lines = [line for line in lines if line.startswith("cycle ")]
    assert [line.split()[1] for line in cycle_lines] == ["1", "2", "3", "4"]
    assert any(line.endswith("…") for line in cycle_lines)  # a long description, cut
    assert "best val_bpb" in "\n".join(lines)
    panel = [line for line in lines if PANEL.match(line)]
    assert panel[0].startswith("╭─ autoresearch · autoresearch/tty ")

    term.keys("C-c")
    after = term.wait(lambda s: "[exit " in s, "the command's exit")
    text = "\n".join(after)
    assert "[exit 130, echoctl]" in text  # and the terminal's settings are as they were
    assert "SIGINT: stopping: killing the experiment, restoring the best commit…" in after
    assert "stopped: the interrupted cycle is recorded as crash" in after
    assert not PANEL.search(text), "part of the panel is left on screen:\n" + text
    assert "^C" not in text
    cycle_lines = [line for line in after if line.startswith("cycle ")]
    assert [line.split()[1:3] for line in cycle_lines][-1] == ["5", "crash"]
    assert len(term.screen(joined=True)) == len(after)


def test_a_resumed_run_starts_from_the_ledger(
    tmp_path: Path, terminal: Callable[[int, int], Terminal]
) -> None:
    repo = make_repo(tmp_path / "repo", {"train.py": TRAIN})
    init(repo, "--timeout", "200")
    done = subprocess.run(
        [PY, "-m", "autoresearch", "run", str(repo), "--max-runs", "3", "-q"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    earlier = [line.split()[1:3] for line in done.stdout.splitlines()]
    state = json.loads((repo / ".autoresearch" / "state.json").read_text())
    term = terminal(120, 30)
    term.start(repo, f"{CLI} run", env={"SLOW_FROM": "4"})
    lines = term.wait(lambda s: "cycle         4" in s and "execute" in s, "cycle 4 executing")
    assert_fits(term, lines)
    assert not any(line.startswith("cycle ") for line in lines)  # nothing new has finished
    assert f"best val_bpb  {state['bestMetric']:.6f}" in "\n".join(lines)
    rows = [PANEL.sub("", line).split()[:2] for line in lines if re.match(r"│ +\d+  ", line)]
    assert rows == earlier and earlier[0] == ["1", "keep"]
    term.keys("C-c")
    term.wait(lambda s: "[exit 130" in s, "the command's exit")


def test_a_timeout_says_so_while_the_experiment_is_stopped(
    tmp_path: Path, terminal: Callable[[int, int], Terminal]
) -> None:
    repo = make_repo(tmp_path / "repo", {"train.py": STUBBORN})
    init(repo, "--timeout", "1", "--kill-grace", "30")
    term = terminal(80, 24)
    term.start(repo, f"{CLI} run --max-runs 2")
    lines = term.wait(lambda s: "timed out" in s, "the time-out")
    assert "│ experiment    timed out, stopping (limit 1s)" in "\n".join(lines)
    assert not re.search(r"\d+s / 1s", "\n".join(lines))  # no "4s / 3s" riddle
    assert_fits(term, lines)
    after = term.wait(lambda s: "[exit " in s, "the command's exit", deadline=120)
    assert "[exit 0, echoctl]" in after[-1] or "[exit 0, echoctl]" in "\n".join(after)
    assert any(line.startswith("cycle   2  timeout") for line in after)


LONG = "raise the learning rate warm-up to eight steps and halve the weight decay coefficient"


@pytest.mark.parametrize("width", [80, 120])
def test_results_fit_the_terminal_and_cut_long_descriptions(
    tmp_path: Path, terminal: Callable[[int, int], Terminal], width: int
) -> None:
    repo = make_repo(tmp_path / "repo", {"train.py": TRAIN})
    init(repo)
    assert runner.invoke(app, ["run-once", str(repo), "-q"]).exit_code == 0
    record = json.loads((repo / ".autoresearch" / "runs.jsonl").read_text())
    ledger = repo / ".autoresearch" / "runs.jsonl"
    with ledger.open("a") as out:  # a second cycle with a long description
        out.write(json.dumps({**record, "cycle": 2, "description": LONG, "baseline": False}) + "\n")
    term = terminal(width, 24)
    term.start(repo, f"{CLI} results")
    lines = term.wait(lambda s: "[exit 0" in s, "the results")
    assert_fits(term, lines)
    [row] = [line for line in lines if re.match(r" +2  ", line)]
    shown = row[row.index("raise") :]
    assert shown.endswith("…") and LONG.startswith(shown[:-1])
    assert len(shown) >= (24 if width == 80 else 60)  # the description has room
    assert max(len(line) for line in lines) <= width
    full = runner.invoke(app, ["show", str(repo), "2"]).stdout
    assert f"description: {LONG}" in full


def test_the_next_hint_quotes_a_path_with_spaces(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "my repo", {"train.py": TRAIN})
    out = init(repo)
    [hint] = [line for line in out.splitlines() if line.startswith("Next: ")]
    command = hint.removeprefix("Next: ").split("   (or:")[0]
    assert shlex.split(command) == ["autoresearch", "run-once", str(repo)]


PARAMS = """\
import argparse
LEARNING_RATE = 0.05
TOKENIZER_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789 .,;:!?"
COMPUTE_BUDGET_IN_MULTIPLY_ADDS = 4 * 10**6
parser = argparse.ArgumentParser()
parser.add_argument("--label-smoothing-probability", type=float, default=0.1)
args = parser.parse_args()
print(f"val_bpb: {LEARNING_RATE + args.label_smoothing_probability:.6f}")
"""


@pytest.mark.parametrize("width", [80, 120])
def test_the_params_listing_fits_and_breaks_no_name(
    tmp_path: Path, terminal: Callable[[int, int], Terminal], width: int
) -> None:
    repo = make_repo(tmp_path / "repo", {"train.py": PARAMS})
    init(repo)
    term = terminal(width, 40)
    term.start(repo, f"{CLI} params")
    lines = term.wait(lambda s: "[exit " in s, "the command's exit")
    assert_fits(term, lines)
    shown = "\n".join(lines)
    for name in ("LEARNING_RATE", "label_smoothing_probability", "COMPUTE_BUDGET_IN_MULTIPLY_ADDS"):
        assert name in shown, f"{name} broken or missing:\n{shown}"
    if width < 120:  # two lines a parameter: the reason indented under it
        at = next(i for i, line in enumerate(lines) if line.startswith("LEARNING_RATE "))
        assert lines[at + 1].startswith("    1/10x to 10x")
    else:
        assert lines[0].split() == ["name", "where", "style", "value", "range", "why"]
