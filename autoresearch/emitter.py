"""The event emitter: subscribe to a worker's events from sync or async code.

Each :class:`EventEmitter` owns its own blinker ``Namespace`` (never the global one), with one
signal per event name plus ``"*"`` for every event. Receivers are held strongly, so a lambda or a
closure keeps working after the line that registered it. Handlers run in the order they were
added; async handlers are awaited one after another. A handler that raises is logged and
reported once as an ``autoresearch:error`` event; it never breaks the cycle that emitted.

Before delivery, an event without a ``source`` gets the one of the emitting context (see
:func:`autoresearch.events.event_source`), so handlers and streams can tell workers and tasks
apart. That costs one context-variable read, plus one model copy when a source is set.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import TracebackType
from typing import Any, TypeVar, overload

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from blinker import ANY, Namespace, Signal

from autoresearch.events import _SOURCE, EVENT_MODELS, EVENT_NAMES, ErrorEvent, Event

__all__ = ["ALL_EVENTS", "EventEmitter", "EventStream", "Handler", "handlers_within"]

_DEADLINE: ContextVar[float | None] = ContextVar("autoresearch_handler_deadline", default=None)


@contextmanager
def handlers_within(seconds: float) -> Iterator[None]:
    """Give async event handlers awaited inside at most ``seconds`` in all, then cut them off.

    The engine uses it for the events of a cleanup after cancellation, so a slow handler
    cannot hold up the exit (a handler that sleeps 4 s on every event is cut at the deadline,
    logged, and the remaining events still reach the other handlers).
    """
    deadline = anyio.current_time() + seconds
    outer = _DEADLINE.get()
    token = _DEADLINE.set(deadline if outer is None else min(outer, deadline))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


logger = logging.getLogger("autoresearch")

ALL_EVENTS = "*"
"""Subscribe to this name to receive every event."""

Handler = Callable[[Any], Any]
"""A sync function or an async function taking one event."""

H = TypeVar("H", bound=Handler)
EventKey = str | type[Any]


def _name_of(key: EventKey) -> str:
    if isinstance(key, type):
        for name, model in EVENT_MODELS.items():
            if model is key:
                return name
        raise ValueError(f"{key.__name__} is not an autoresearch event model")
    if key == ALL_EVENTS or key in EVENT_MODELS:
        return key
    valid = ", ".join((*EVENT_NAMES, ALL_EVENTS))
    raise ValueError(f"unknown event name {key!r}; valid names are: {valid}")


class EventEmitter:
    """Delivers a worker's events to handlers and streams. One per :class:`NeuroLink`."""

    def __init__(self) -> None:
        self._namespace = Namespace()
        self._once: dict[tuple[str, int], Handler] = {}

    def _signal(self, name: str) -> Signal:
        return self._namespace.signal(name)

    @overload
    def on(self, event: EventKey) -> Callable[[H], H]: ...
    @overload
    def on(self, event: EventKey, handler: H) -> H: ...
    def on(self, event: EventKey, handler: H | None = None) -> H | Callable[[H], H]:
        """Call ``handler(event)`` for every event of that name (or model class).

        Works as a decorator too (``@emitter.on("autoresearch:cycle:end")``). ``"*"`` receives
        every event. An unknown name raises ``ValueError`` listing the valid ones.
        """
        name = _name_of(event)
        if handler is None:

            def register(func: H) -> H:
                self._signal(name).connect(func, sender=ANY, weak=False)
                return func

            return register
        self._signal(name).connect(handler, sender=ANY, weak=False)
        return handler

    @overload
    def once(self, event: EventKey) -> Callable[[H], H]: ...
    @overload
    def once(self, event: EventKey, handler: H) -> H: ...
    def once(self, event: EventKey, handler: H | None = None) -> H | Callable[[H], H]:
        """Like :meth:`on` (a decorator too), but the handler is removed after its first call."""
        if handler is None:
            return lambda func: self.once(event, func)
        name = _name_of(event)
        signal = self._signal(name)

        def wrapper(payload: Any) -> Any:
            signal.disconnect(wrapper)
            self._once.pop((name, id(handler)), None)
            return handler(payload)

        self._once[(name, id(handler))] = wrapper
        signal.connect(wrapper, sender=ANY, weak=False)
        return handler

    def off(self, event: EventKey, handler: Handler) -> None:
        """Remove a handler added with :meth:`on` or :meth:`once` (no error if absent)."""
        name = _name_of(event)
        signal = self._signal(name)
        signal.disconnect(self._once.pop((name, id(handler)), handler))

    def listener_count(self, event: EventKey) -> int:
        """How many handlers are registered for ``event`` (not counting ``"*"``)."""
        return len(self._signal(_name_of(event)).receivers)

    async def emit(self, event: Event) -> None:
        """Deliver ``event`` to its handlers, then to the ``"*"`` handlers, in order.

        An event whose ``source`` is None is delivered as a copy that carries the current
        source (the worker, slot and task emitting it), if there is one; an event that names
        its source is delivered as is.
        """
        named, every = self._signal(event.type), self._signal(ALL_EVENTS)
        if not (named.receivers or every.receivers):
            return  # nobody listens: not even the copy is made
        if event.source is None:
            source = _SOURCE.get()
            if source is not None:
                event = event.model_copy(update={"source": source})
        for signal in (named, every):
            if not signal.receivers:
                continue
            for receiver in list(signal.receivers_for(ANY)):
                try:
                    result = receiver(event)
                    if inspect.isawaitable(result):
                        await self._await_handler(result, receiver, event)
                except Exception as exc:
                    await self._report_handler_failure(event, receiver, exc)

    @staticmethod
    async def _await_handler(result: Awaitable[Any], receiver: Handler, event: Event) -> None:
        deadline = _DEADLINE.get()
        if deadline is None:
            await result
            return
        with anyio.move_on_after(max(0.0, deadline - anyio.current_time())) as scope:
            await result
        if scope.cancelled_caught:
            label = getattr(receiver, "__qualname__", repr(receiver))
            logger.warning("event handler %s cut off on %s (stopping)", label, event.type)

    async def _report_handler_failure(
        self, event: Event, receiver: Handler, exc: Exception
    ) -> None:
        label = getattr(receiver, "__qualname__", repr(receiver))
        logger.error("event handler %s failed on %s", label, event.type, exc_info=exc)
        if isinstance(event, ErrorEvent):
            return  # never report a failure of an error handler as another error
        await self.emit(
            ErrorEvent(
                source=event.source,
                cycle=getattr(event, "cycle", None),
                phase=getattr(event, "phase", None),
                error_type=type(exc).__name__,
                message=f"event handler {label} failed on {event.type}: {exc}",
            )
        )

    def stream(self, *events: EventKey, max_buffer: int = 10_000) -> EventStream:
        """An async iterator over events, for async applications.

        ``async with emitter.stream() as events: async for event in events: ...``. With no
        names it yields every event. If the consumer falls more than ``max_buffer`` events
        behind, newer events are dropped (counted in ``EventStream.dropped``) rather than
        slowing the research down.
        """
        names = [_name_of(e) for e in events] or [ALL_EVENTS]
        return EventStream(self, names, max_buffer)


class EventStream:
    """Events as an async iterator; subscribed on enter or first iteration, until closed."""

    def __init__(self, emitter: EventEmitter, names: list[str], max_buffer: int) -> None:
        self._emitter = emitter
        self._names = names
        self._max_buffer = max_buffer if max_buffer > 0 else math.inf
        self._send: MemoryObjectSendStream[Event] | None = None
        self._receive: MemoryObjectReceiveStream[Event] | None = None
        self.dropped = 0
        """Events dropped because the consumer was too slow."""

    def _push(self, event: Event) -> None:
        if self._send is None:
            return
        try:
            self._send.send_nowait(event)
        except anyio.WouldBlock:
            self.dropped += 1
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    def _open(self) -> MemoryObjectReceiveStream[Event]:
        if self._receive is None:
            self._send, self._receive = anyio.create_memory_object_stream[Event](self._max_buffer)
            for name in self._names:
                self._emitter.on(name, self._push)
        return self._receive

    async def aclose(self) -> None:
        """Stop receiving events."""
        for name in self._names:
            self._emitter.off(name, self._push)
        if self._send is not None:
            self._send.close()
        if self._receive is not None:
            self._receive.close()

    async def __aenter__(self) -> EventStream:
        self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        receive = self._open()
        try:
            async for event in receive:
                yield event
        except anyio.ClosedResourceError:
            return
