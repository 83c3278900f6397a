"""An async app that watches research through ``emitter.stream()`` while a worker runs.

    python examples/event_stream.py [REPO] [--cycles N]          # SSE frames on stdout
    python examples/event_stream.py [REPO] --serve [--port P]     # live in a browser

REPO (or $AUTORESEARCH_EXAMPLE_REPO) is a repository set up with ``autoresearch init``, or a
git repository with ``train.py`` and ``program.md`` like ``examples/quickstart``. Without one, a
scratch copy of the quickstart example is made in a new temporary directory. The offline
``local`` proposer runs N cycles (default 5).

By default every event is printed as a server-sent-events frame, exactly what a web server
would send to a browser::

    event: autoresearch:cycle:end
    data: {"at": "...", "type": "autoresearch:cycle:end", "cycle": 2, "status": "keep", ...}

With ``--serve`` the script is that web server, built on anyio alone (no framework): it prints
its address, serves a page at ``/`` that shows the events as they arrive, and streams them at
``/events``. Research starts when the first browser connects, and the server exits when it
ends. docs/recipes/server-sent-events.md shows the same with FastAPI or Starlette.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import anyio
from anyio.abc import SocketAttribute, SocketStream

from autoresearch import Event, NeuroLink, NotInitializedError, ResearchWorker
from autoresearch.cli.quickstart import create_quickstart


def sse_frame(event: Event) -> str:
    """One server-sent-events frame: the event's name, then its JSON on a ``data:`` line."""
    return f"event: {event.type}\ndata: {json.dumps(event.to_json_dict())}\n\n"


async def open_worker(neurolink: NeuroLink, repo: str | None) -> ResearchWorker:
    """The worker for ``repo``: its saved configuration, or the quickstart's settings."""
    if repo is None:
        repo = str(await create_quickstart(Path(tempfile.mkdtemp()) / "quickstart"))
        print(f": a scratch copy of the quickstart example: {repo}\n", flush=True)
    try:
        return await neurolink.load_research_worker(repo)
    except NotInitializedError:
        return neurolink.create_research_worker(
            repo_path=repo,
            tag="stream",
            mutable_paths=["train.py"],
            immutable_paths=["program.md"],
            run_command=f"{sys.executable} train.py",
            metric={"name": "val_bpb", "pattern": r"^val_bpb:\s+([\d.]+)"},
            timeout_ms=120_000,
        )


async def print_frames(neurolink: NeuroLink, worker: ResearchWorker, cycles: int) -> None:
    """Run the research in one task and print its events, as they happen, in another."""
    async with neurolink.get_event_emitter().stream() as events, anyio.create_task_group() as tg:
        tg.start_soon(worker.run, cycles)
        async for event in events:
            print(sse_frame(event), end="", flush=True)
            if event.type == "autoresearch:stopped":
                break


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>autoresearch: live</title>
<style>body{font:15px/1.5 system-ui,sans-serif;margin:2em}li{font-family:monospace}
.keep{color:#1a7f37;font-weight:bold}.crash,.timeout{color:#cf222e}</style></head>
<body><h1>autoresearch, live</h1><p id="state">connecting…</p><ol id="cycles"></ol>
<script>
const source = new EventSource("/events");
const state = document.getElementById("state");
source.addEventListener("autoresearch:phase:enter", (m) => {
  const e = JSON.parse(m.data); state.textContent = `cycle ${e.cycle}: ${e.phase}…`;
});
source.addEventListener("autoresearch:cycle:end", (m) => {
  const e = JSON.parse(m.data), li = document.createElement("li");
  li.className = e.status;
  li.textContent = `${e.status} ${e.metricValue ?? "-"} (best ${e.bestMetric}) ${e.description}`;
  document.getElementById("cycles").appendChild(li);
});
source.addEventListener("autoresearch:stopped", (m) => {
  state.textContent = `stopped: ${JSON.parse(m.data).reason}`; source.close();
});
</script></body></html>
"""


async def read_path(client: SocketStream) -> bytes:
    """The path of the HTTP request the client sends (``/`` if it cannot be read)."""
    request = b""
    while b"\r\n\r\n" not in request and len(request) < 65536:
        request += await client.receive()
    parts = request.split(b" ", 2)
    return parts[1] if len(parts) == 3 else b"/"


async def serve(neurolink: NeuroLink, worker: ResearchWorker, cycles: int, port: int) -> None:
    """Serve the page and the event stream until the research has run and been streamed."""
    first_client = anyio.Event()
    finished = anyio.Event()

    async def stream_events(client: SocketStream) -> None:
        await client.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n"
        )
        async with neurolink.get_event_emitter().stream() as events:
            first_client.set()
            async for event in events:
                await client.send(sse_frame(event).encode())
                if event.type == "autoresearch:stopped":
                    finished.set()
                    return

    async def handle(client: SocketStream) -> None:
        try:
            async with client:
                if await read_path(client) == b"/events":
                    await stream_events(client)
                    return
                body = PAGE.encode()
                head = "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                await client.send(head.encode() + body)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the browser went away; its stream was closed by the `async with`

    async with anyio.create_task_group() as tg:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)
        bound = listener.extra(SocketAttribute.local_port)
        print(f"serving on http://127.0.0.1:{bound}/ (research starts when you open it)")
        sys.stdout.flush()
        tg.start_soon(listener.serve, handle)
        await first_client.wait()
        await worker.run(cycles)
        with anyio.move_on_after(5):  # let the open streams deliver the last events
            await finished.wait()
        tg.cancel_scope.cancel()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", nargs="?", default=os.environ.get("AUTORESEARCH_EXAMPLE_REPO"))
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--serve", action="store_true", help="serve the events to a browser")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args()
    async with NeuroLink() as neurolink:
        worker = await open_worker(neurolink, args.repo)
        async with worker:
            if args.serve:
                await serve(neurolink, worker, args.cycles, args.port)
            else:
                await print_frames(neurolink, worker, args.cycles)


if __name__ == "__main__":
    anyio.run(main)
