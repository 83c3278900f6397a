"""5. Events: ``EventEmitter.emit`` against raw blinker ``Signal.send_async``, same receivers.

For 1, 10 and 100 subscribers, each either a plain function or an ``async def``, the same
receiver objects are connected to an :class:`autoresearch.EventEmitter` (``emitter.on(name,
handler)``) and to a bare ``blinker.Signal`` (``connect(handler, weak=False)``). One prebuilt
``PhaseExitEvent`` is delivered in batches; raw blinker gets it as the sender and, for sync
receivers, the ``_sync_wrapper`` blinker requires (it wraps each call in a coroutine). Batches of
the two alternate (rotating which goes first) and the per-event time is the median over batches.
Zero subscribers is shown for information. Building an event model (which the worker does for
every event, subscribers or not) is timed separately.

Target: emitter time per event <= 1.5 x raw blinker's, for every row with subscribers.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from _common import parser, table, verdict, write_results
from blinker import Signal

from autoresearch import EventEmitter, PhaseExitEvent

TARGET = 1.5
NAME = "autoresearch:phase:exit"


def _sync_wrapper(func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    async def inner(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return inner


def make_receivers(count: int, kind: str, hits: list[int]) -> list[Callable[[Any], Any]]:
    receivers: list[Callable[[Any], Any]] = []
    for _ in range(count):
        if kind == "sync":

            def receiver(event: Any) -> None:
                hits[0] += 1
        else:

            async def receiver(event: Any) -> None:  # type: ignore[misc]
                hits[0] += 1

        receivers.append(receiver)
    return receivers


async def compare(count: int, kind: str, rounds: int, calls_per_batch: int) -> dict[str, Any]:
    hits = [0]
    receivers = make_receivers(count, kind, hits)
    emitter = EventEmitter()
    signal = Signal()
    for receiver in receivers:
        emitter.on(NAME, receiver)
        signal.connect(receiver, weak=False)
    event = PhaseExitEvent(cycle=1, phase="execute", duration_ms=5, outcome="ok")
    batch = max(200, calls_per_batch // max(count, 1))

    async def run_emitter() -> float:
        start = time.perf_counter()
        for _ in range(batch):
            await emitter.emit(event)
        return (time.perf_counter() - start) / batch * 1e6

    async def run_raw() -> float:
        wrapper = _sync_wrapper
        start = time.perf_counter()
        for _ in range(batch):
            await signal.send_async(event, _sync_wrapper=wrapper)
        return (time.perf_counter() - start) / batch * 1e6

    await run_emitter()  # warm-up
    await run_raw()
    hits[0] = 0
    ours: list[float] = []
    raw: list[float] = []
    for i in range(rounds):
        if i % 2 == 0:
            ours.append(await run_emitter())
            raw.append(await run_raw())
        else:
            raw.append(await run_raw())
            ours.append(await run_emitter())
    delivered_ok = hits[0] == 2 * rounds * batch * count
    ours_us, raw_us = statistics.median(ours), statistics.median(raw)
    return {
        "subscribers": count,
        "kind": kind,
        "events_per_batch": batch,
        "batches": rounds,
        "emitter_us_per_event": ours_us,
        "blinker_us_per_event": raw_us,
        "ratio": ours_us / raw_us,
        "every_handler_called": delivered_ok,
    }


def model_build_us(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        PhaseExitEvent(cycle=1, phase="execute", duration_ms=5, outcome="ok")
    return (time.perf_counter() - start) / n * 1e6


async def run(quick: bool) -> dict[str, Any]:
    rounds = 5 if quick else 31
    calls = 5_000 if quick else 50_000
    rows = []
    for count in (0, 1, 10, 100):
        for kind in ("sync", "async"):
            if count == 0 and kind == "async":
                continue
            rows.append(await compare(count, kind, rounds, calls))
    return {"rows": rows, "event_model_build_us": model_build_us(2_000 if quick else 50_000)}


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    result = anyio.run(run, args.quick)
    passed = True
    out_rows = []
    for r in result["rows"]:
        scored = r["subscribers"] > 0
        ok = r["ratio"] <= TARGET and r["every_handler_called"]
        if scored:
            passed = passed and ok
        out_rows.append(
            [
                r["subscribers"],
                r["kind"] if scored else "-",
                r["emitter_us_per_event"],
                r["blinker_us_per_event"],
                r["ratio"],
                verdict(ok) if scored else "info",
            ]
        )
    print(
        table(
            "Event delivery, microseconds per event (median of batches)",
            [
                "subscribers",
                "handlers",
                "EventEmitter.emit",
                "blinker send_async",
                "ratio",
                f"<= {TARGET}x",
            ],
            out_rows,
        )
    )
    print(f"\nbuilding one event model (PhaseExitEvent): {result['event_model_build_us']:.2f} us")
    write_results(
        "events",
        {
            "target": f"emit <= {TARGET}x raw blinker send_async per event",
            "passed": passed,
            **result,
        },
        args,
    )


if __name__ == "__main__":
    main()
