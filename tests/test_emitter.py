"""The event emitter: sync and async handlers, once/off, decorators, streams, failures."""

from __future__ import annotations

import anyio
import pytest

from autoresearch import (
    EVENT_NAMES,
    CycleEndEvent,
    CycleStartEvent,
    ErrorEvent,
    EventEmitter,
    parse_event,
)

pytestmark = pytest.mark.anyio


def start(n: int) -> CycleStartEvent:
    return CycleStartEvent(cycle=n, tag="t")


def test_the_ten_seed_events_then_the_notice() -> None:
    assert EVENT_NAMES == (
        "autoresearch:cycle:start",
        "autoresearch:cycle:end",
        "autoresearch:phase:enter",
        "autoresearch:phase:exit",
        "autoresearch:metric:recorded",
        "autoresearch:commit:created",
        "autoresearch:commit:reverted",
        "autoresearch:error",
        "autoresearch:timeout",
        "autoresearch:stopped",
        "autoresearch:notice",
    )


async def test_sync_async_in_order_with_closures() -> None:
    emitter = EventEmitter()
    seen: list[str] = []

    def register() -> None:  # closures must survive: receivers are held strongly
        emitter.on("autoresearch:cycle:start", lambda e: seen.append(f"sync{e.cycle}"))

        async def later(e: CycleStartEvent) -> None:
            await anyio.sleep(0)
            seen.append(f"async{e.cycle}")

        emitter.on(CycleStartEvent, later)

    register()
    import gc

    gc.collect()
    await emitter.emit(start(1))
    assert seen == ["sync1", "async1"]


async def test_decorator_once_off_and_wildcard() -> None:
    emitter = EventEmitter()
    got: list[object] = []

    @emitter.on("autoresearch:cycle:end")
    def ended(e: CycleEndEvent) -> None:
        got.append(("end", e.cycle))

    emitter.once("autoresearch:cycle:start", lambda e: got.append(("once", e.cycle)))
    everything: list[str] = []
    emitter.on("*", lambda e: everything.append(e.type))
    await emitter.emit(start(1))
    await emitter.emit(start(2))
    await emitter.emit(CycleEndEvent(cycle=2, status="keep"))
    emitter.off("autoresearch:cycle:end", ended)
    await emitter.emit(CycleEndEvent(cycle=3, status="keep"))
    assert got == [("once", 1), ("end", 2)]
    assert everything == [
        "autoresearch:cycle:start",
        "autoresearch:cycle:start",
        "autoresearch:cycle:end",
        "autoresearch:cycle:end",
    ]


def test_unknown_name_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown event name 'cycle:end'.*autoresearch:cycle:end"):
        EventEmitter().on("cycle:end", print)


async def test_failing_handler_reported_once_never_recursively() -> None:
    emitter = EventEmitter()
    errors: list[ErrorEvent] = []
    after: list[int] = []

    def bad(e: object) -> None:
        raise KeyError("boom")

    def bad_error_handler(e: ErrorEvent) -> None:
        errors.append(e)
        raise RuntimeError("error handler also broken")

    emitter.on("autoresearch:cycle:start", bad)
    emitter.on("autoresearch:cycle:start", lambda e: after.append(e.cycle))
    emitter.on("autoresearch:error", bad_error_handler)
    await emitter.emit(start(7))
    assert after == [7]  # later handlers still run
    assert len(errors) == 1
    assert errors[0].cycle == 7 and errors[0].error_type == "KeyError"


async def test_stream_yields_events_and_unsubscribes() -> None:
    emitter = EventEmitter()
    received: list[int] = []
    async with emitter.stream("autoresearch:cycle:start") as events:
        await emitter.emit(start(1))
        await emitter.emit(CycleEndEvent(cycle=1, status="keep"))
        await emitter.emit(start(2))
        async for event in events:
            received.append(event.cycle)
            if len(received) == 2:
                break
    assert received == [1, 2]
    assert emitter.listener_count("autoresearch:cycle:start") == 0


async def test_stream_drops_when_consumer_is_far_behind() -> None:
    emitter = EventEmitter()
    async with emitter.stream(max_buffer=2) as events:
        for n in range(5):
            await emitter.emit(start(n))
        assert events.dropped == 3


def test_events_speak_both_spellings_and_round_trip() -> None:
    event = CycleEndEvent(cycle=3, status="discard", metric_value=1.5, commit_hash="abc")
    assert event.metricValue == event.metric_value == 1.5
    data = event.to_json_dict()
    assert data["type"] == "autoresearch:cycle:end" and data["commitHash"] == "abc"
    assert parse_event(data) == event
    with pytest.raises(Exception):
        event.cycle = 4  # type: ignore[misc]  # frozen
