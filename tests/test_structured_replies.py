"""Structured replies: the schema on each wire format, refusals, and retries that say why."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import httpx
import pytest
import test_providers_kit as kit
from test_providers_kit import ANTHROPIC_REPLY, BY_NAME, CASES, OPENAI_REPLY, REQUEST, Case, Reply

from autoresearch import ScriptedChatModel, errors
from autoresearch.proposers.llm import LLMProposer
from autoresearch.proposers.replies import (
    EDITS_REPLY,
    PLAN_REPLY,
    find_object,
    read_edits,
    with_paths,
)
from autoresearch.providers import create_chat_model
from autoresearch.providers._schema import strict_form
from tests.conftest import loopback_server
from tests.test_llm_proposer import make_analysis, make_context

build = kit.build
delays = kit.delays

pytestmark = pytest.mark.anyio

WITH_SCHEMA = REQUEST.model_copy(update={"reply_schema": PLAN_REPLY})
PLAN_TEXT = json.dumps({"description": "lower X to 2.0", "rationale": "closer to 1"})


def _types(schema: Any) -> list[str]:
    """Every ``type`` value in a schema, depth first."""
    if isinstance(schema, dict):
        found = [schema["type"]] if isinstance(schema.get("type"), str) else []
        for value in schema.values():
            found += _types(value)
        return found
    if isinstance(schema, list):
        return [t for item in schema for t in _types(item)]
    return []


def _schema_part(case: Case, body: dict[str, Any]) -> Any:
    """Where each wire format carries the reply schema."""
    if case.provider == "anthropic":
        return (body["tools"], body["tool_choice"])
    if case.provider.startswith("google"):
        config = body["generationConfig"]
        return (config["responseMimeType"], config["responseSchema"])
    if case.provider == "ollama":
        return body["format"]
    return body["response_format"]


def test_the_strict_form_requires_everything_and_makes_the_optional_nullable() -> None:
    strict = strict_form(PLAN_REPLY.json_schema)
    assert strict["required"] == ["description", "rationale", "edits"]
    assert strict["additionalProperties"] is False
    edits = strict["properties"]["edits"]
    assert edits["type"] == ["array", "null"]
    for branch in edits["items"]["anyOf"]:
        assert branch["additionalProperties"] is False
        assert branch["required"] == list(branch["properties"])
    assert "minLength" not in json.dumps(strict)


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_each_wire_format_sends_the_reply_schema(build: kit.Build, case: Case) -> None:
    model, server = build(case)
    await model.complete(WITH_SCHEMA)
    part = _schema_part(case, server.body())
    plain = PLAN_REPLY.json_schema
    if case.provider == "anthropic":
        tool = {"name": "plan", "description": PLAN_REPLY.description, "input_schema": plain}
        assert part == ([tool], {"type": "tool", "name": "plan"})
    elif case.provider.startswith("google"):
        mime, schema = part
        assert mime == "application/json"
        assert set(_types(schema)) == {"OBJECT", "STRING", "ARRAY"}
        assert schema["required"] == ["description", "rationale"]
        edit = schema["properties"]["edits"]["items"]
        assert set(edit["properties"]) == {"path", "search", "replace", "content"}
        assert edit["required"] == ["path"]
        assert "anyOf" not in json.dumps(schema) and "minLength" not in json.dumps(schema)
    elif case.provider == "ollama":
        assert part == plain
    elif case.provider == "llamacpp":
        assert part == {"type": "json_object", "schema": plain}
    else:
        assert part == {
            "type": "json_schema",
            "json_schema": {
                "name": "plan",
                "schema": strict_form(plain),
                "strict": True,
                "description": PLAN_REPLY.description,
            },
        }
    # Without a schema, none of it is sent.
    await model.complete(REQUEST)
    sent = json.dumps(server.body())
    for key in ("response_format", "responseSchema", "tool_choice", '"format"'):
        assert key not in sent


async def test_anthropic_reads_the_forced_tool_call_as_the_reply(build: kit.Build) -> None:
    called = {
        **ANTHROPIC_REPLY,
        "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "plan", "input": json.loads(PLAN_TEXT)}
        ],
        "stop_reason": "tool_use",
    }
    model, _ = build(BY_NAME["anthropic"], Reply(200, called))
    answer = await model.complete(WITH_SCHEMA)
    assert json.loads(answer.text) == json.loads(PLAN_TEXT)
    assert answer.stop_reason == "tool_use"


@pytest.mark.parametrize("status", [400, 422])
async def test_a_refused_schema_is_dropped_for_the_rest_of_the_run(
    build: kit.Build, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    model, server = build(BY_NAME["openai"], kit.fail(status), Reply(200, OPENAI_REPLY))
    with caplog.at_level(logging.WARNING, logger="autoresearch"):
        answer = await model.complete(WITH_SCHEMA)
        assert answer.text == kit.TEXT
        assert "response_format" in server.body(0)
        assert "response_format" not in server.body(1)
        await model.complete(WITH_SCHEMA)  # remembered: sent without the schema at once
    assert server.attempts == 3
    assert "response_format" not in server.body(2)
    said = [r.getMessage() for r in caplog.records]
    assert said == [
        f"openai: the server refused the reply schema (openai: {status} "
        f"{httpx.codes.get_reason_phrase(status)}: something is off); sending requests without "
        "it from now on and reading the replies leniently"
    ]


async def test_a_500_for_the_schema_is_retried_then_the_schema_dropped(build: kit.Build) -> None:
    # llama-cpp-python's server answers an unknown response_format with a 500.
    refused = kit.fail(500)
    model, server = build(BY_NAME["llamacpp"], refused, refused, refused, Reply(200, OPENAI_REPLY))
    await model.complete(WITH_SCHEMA)
    sent = ["response_format" in server.body(i) for i in range(server.attempts)]
    assert sent == [True, True, True, False]
    assert getattr(model, "schema_refused", None) is True


async def test_a_request_that_fails_without_the_schema_too_is_an_error(build: kit.Build) -> None:
    model, server = build(BY_NAME["openai"], kit.fail(400))
    with pytest.raises(errors.BadRequestError):
        await model.complete(WITH_SCHEMA)
    assert server.attempts == 2
    assert "response_format" not in server.body(1)
    # The schema was not to blame, so it is still sent.
    model, server = build(BY_NAME["openai"], kit.fail(400), kit.fail(400), Reply(200, OPENAI_REPLY))
    with pytest.raises(errors.BadRequestError):
        await model.complete(WITH_SCHEMA)
    await model.complete(WITH_SCHEMA)
    assert "response_format" in server.body(2)


async def test_a_404_is_not_blamed_on_the_schema(build: kit.Build) -> None:
    model, server = build(BY_NAME["openai"], kit.fail(404))
    with pytest.raises(errors.BadRequestError):
        await model.complete(WITH_SCHEMA)
    assert server.attempts == 1


async def test_every_retry_is_logged_with_its_reason_and_delay(
    build: kit.Build, caplog: pytest.LogCaptureFixture
) -> None:
    replies = (
        kit.fail(429, headers={"retry-after": "3"}),
        httpx.ConnectError("connection refused"),
        Reply(200, OPENAI_REPLY),
    )
    model, _ = build(BY_NAME["openai"], *replies)
    with caplog.at_level(logging.WARNING, logger="autoresearch"):
        await model.complete(REQUEST)
    said = [r.getMessage() for r in caplog.records]
    assert said[0] == (
        "openai: 429 Too Many Requests: something is off (the server asked to wait); "
        "retry 1 of 2 in 3.0 s"
    )
    assert said[1].startswith(
        "openai: cannot reach https://api.openai.com/v1/chat/completions: connection refused; "
        "retry 2 of 2 in "
    )
    assert len(said) == 2


# The proposer's side: which schema goes with which request, and what comes back.


async def test_the_proposer_asks_for_a_plan_then_for_edits() -> None:
    edits = {"edits": [{"path": "train.py", "search": "X = 3.0", "replace": "X = 2.0"}]}
    model = ScriptedChatModel([PLAN_TEXT, json.dumps(edits)])
    proposer = LLMProposer(model)
    context = make_context()
    plan = await proposer.plan(context, make_analysis(), None)
    await proposer.implement(context, plan)
    assert [r.reply_schema for r in model.requests] == [
        with_paths(PLAN_REPLY, ["train.py"]),
        with_paths(EDITS_REPLY, ["train.py"]),
    ]
    edit = model.requests[0].reply_schema.json_schema["properties"]["edits"]["items"]  # type: ignore[union-attr]
    assert [branch["properties"]["path"]["enum"] for branch in edit["anyOf"]] == [["train.py"]] * 2
    off = ScriptedChatModel([PLAN_TEXT])
    await LLMProposer(off, structured=False).plan(context, make_analysis(), None)
    assert off.requests[0].reply_schema is None
    # A mutable directory may get new files: then no list of paths is imposed.
    folder = make_context(mutable_paths=["src"])
    folder = folder.model_copy(update={"mutable_files": {"src/a.py": "A = 1\n"}})
    loose = ScriptedChatModel([PLAN_TEXT])
    await LLMProposer(loose).plan(folder, make_analysis(), None)
    assert loose.requests[0].reply_schema == PLAN_REPLY


async def test_what_strict_output_looks_like_is_read_as_meant() -> None:
    text = json.dumps({"description": "d", "rationale": "r", "edits": None})
    model = ScriptedChatModel(
        [
            text,
            json.dumps(
                {
                    "edits": [
                        {
                            "path": "train.py",
                            "search": "X = 3.0",
                            "replace": "X = 2.0",
                            "content": None,
                        }
                    ]
                }
            ),
        ]
    )
    proposer = LLMProposer(model)
    context = make_context()
    plan = await proposer.plan(context, make_analysis(), None)
    changes = await proposer.implement(context, plan)  # null edits: asked for them
    assert len(model.requests) == 2
    assert changes.edits[0].replace == "X = 2.0"
    whole = {"path": "train.py", "search": "", "replace": "", "content": "X = 1\n"}
    assert read_edits(find_object(json.dumps({"edits": [whole]})))[0].content == "X = 1\n"


# A real server on loopback that refuses the schema.


class _Refusing(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(body)
        if "response_format" in body:
            status, answer = 400, {"error": {"message": "response_format is not supported"}}
        else:
            message = {"role": "assistant", "content": f"Sure! Here it is: {PLAN_TEXT} Good luck."}
            status, answer = 200, {"choices": [{"message": message, "finish_reason": "stop"}]}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def refusing() -> Iterator[str]:
    _Refusing.seen = []
    with loopback_server(_Refusing) as url:
        yield url


async def test_over_real_http_a_server_that_refuses_the_schema_still_gets_plans(
    refusing: str,
) -> None:
    async with httpx.AsyncClient() as client:
        model = create_chat_model(
            "openai-compatible", "small", client=client, base_url=refusing, env={}
        )
        proposer = LLMProposer(model)
        for _ in range(2):
            plan = await proposer.plan(make_context(), make_analysis(), None)
            assert plan.description == "lower X to 2.0"
    sent = ["response_format" in body for body in _Refusing.seen]
    assert sent == [True, False, False]  # refused once, then never sent again
