"""The scripted chat model users test their prompts and hooks with: replies, requests, usage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoresearch import NeuroLink, ScriptedChatModel
from autoresearch.errors import RateLimitError
from autoresearch.proposers.llm import LLMProposer
from autoresearch.providers.base import ChatMessage, ChatModel, ChatRequest, ChatResponse
from autoresearch.results import Usage
from tests.conftest import base_config

pytestmark = pytest.mark.anyio

LOWER = json.dumps(
    {
        "description": "X 3.0 -> 2.0",
        "rationale": "the loss is (X-1)^2+1",
        "edits": [{"path": "train.py", "search": "X = 3.0", "replace": "X = 2.0"}],
    }
)


async def test_it_drives_the_llm_proposer_through_real_cycles(repo: Path) -> None:
    model = ScriptedChatModel([LOWER])
    assert isinstance(model, ChatModel)
    worker = NeuroLink().create_research_worker(base_config(repo), proposer=LLMProposer(model))
    results = await worker.run(max_cycles=3)
    assert [r.status for r in results] == ["keep", "keep", "invalid"]
    assert results[1].description == "X 3.0 -> 2.0"
    assert results[2].description == (
        "the proposer failed: the model call failed: scripted: the script has no reply for "
        "request 2 (it has 1)"
    )
    first = model.requests[0]
    assert "X = 3.0" in first.messages[0].content  # the real prompt, with the code
    assert first.reply_schema is not None and first.reply_schema.name == "plan"
    usage = results[1].usage
    assert usage is not None and usage.calls == 1
    sent = len(first.system) + len(first.messages[0].content)
    assert usage.input_tokens == -(-sent // 4)
    assert usage.output_tokens == -(-len(LOWER) // 4)


async def test_replies_may_be_responses_exceptions_or_a_function() -> None:
    request = ChatRequest(messages=[ChatMessage(role="user", content="hi")])
    given = ChatResponse(text="ok", usage=Usage(input_tokens=7, calls=1))
    model = ScriptedChatModel([given, RateLimitError("slow down", provider="scripted")])
    assert await model.complete(request) is given
    with pytest.raises(RateLimitError):
        await model.complete(request)
    echo = ScriptedChatModel(lambda r: r.messages[-1].content.upper(), model="echo")
    answer = await echo.complete(request)
    assert (answer.text, answer.model, echo.provider) == ("HI", "echo", "scripted")
    assert echo.requests == [request]
