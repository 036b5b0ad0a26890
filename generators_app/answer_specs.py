"""From a parsed request to what its answer must be (outputs.AnswerSpec), with the checks the real service makes
on tools, tool messages and structured-output schemas — each refusal in the service's own 400.

Chat completions and the Responses API state the same things in different shapes (`tools[].function` vs
flat function tools, `response_format` vs `text.format`, tool messages vs `function_call_output` items);
this module reads both, so that outputs.py decides answers one way.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson

from generators_app.errors import ApiError, invalid_request
from generators_app.generation.json_schema import reference_problem
from generators_app.generation.outputs import AnswerSpec, FunctionSpec
from generators_app.generation.strict_schemas import strict_schema_problem
from generators_app.registry import DeploymentConfig
from generators_app.schemas import (
    ChatCompletionRequest,
    NamedToolChoice,
    ResponseFormatJsonObject,
    ResponseFormatJsonSchema,
    ResponsesFunctionTool,
    ResponsesRequest,
    ResponsesTextFormatJsonObject,
    ResponsesTextFormatJsonSchema,
    ResponsesToolChoiceObject,
)

__all__ = ["chat_answer_spec", "check_tool_messages", "function_call_outputs_answered", "responses_answer_spec"]

_TOOL_WITHOUT_CALL = (
    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'."
)


def _reasoning_effort(deployment: DeploymentConfig, effort: str | None, param: str) -> str | None:
    if not deployment.model.reasoning:
        if effort is not None:
            raise invalid_request(
                f"Unsupported parameter: '{param}' is not supported with this model.", param, "unsupported_parameter"
            )
        return None
    return effort or "medium"


@functools.lru_cache(maxsize=256)
def _cached_schema_problem(schema_json: bytes, strict: bool) -> str | None:
    return _schema_problem(orjson.loads(schema_json), strict)


def _schema_problem(schema: Any, strict: bool) -> str | None:
    if strict:
        problem = strict_schema_problem(schema)
        if problem:
            return problem
    # A schema the generator cannot use is the client's 400 here, never a failure in the middle of an answer.
    return reference_problem(schema)


def _check_schema(schema: Any, strict: bool, what: str, param: str, code: str | None) -> None:
    """Agents send the same schemas with every request: each is checked once (keyed by its JSON, which costs a
    few microseconds)."""
    if schema is None:
        return
    try:
        problem = _cached_schema_problem(orjson.dumps(schema), bool(strict))
    except TypeError:  # an integer beyond 64 bits somewhere in it: check without the cache
        problem = _schema_problem(schema, bool(strict))
    if problem:
        raise invalid_request(f"Invalid schema for {what}: {problem}", param, code)


def _mentions_json(texts: list[str]) -> bool:
    return any("json" in text.lower() for text in texts)


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)]
    return []


# --- chat completions --------------------------------------------------------------------------------------
def check_tool_messages(messages: list[dict[str, Any]]) -> None:
    """Every tool message answers a call of the assistant message before it, and every call gets an answer."""
    open_calls: list[str] = []  # ids of the last assistant's calls that have no answer yet
    offered: set[str] = set()  # ids of the last assistant's calls
    caller_index = -1
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            call = message.get("tool_call_id")
            if call not in offered:
                raise invalid_request(_TOOL_WITHOUT_CALL, f"messages.[{index}].role")
            if call in open_calls:
                open_calls.remove(call)
            continue
        if open_calls:
            raise _unanswered(open_calls, caller_index)
        calls = message.get("tool_calls") if role == "assistant" else None
        offered = {call.get("id") for call in calls if isinstance(call, dict)} if calls else set()
        open_calls = [call_id for call_id in offered if isinstance(call_id, str)]
        caller_index = index
    if open_calls:
        raise _unanswered(open_calls, caller_index)


def _unanswered(call_ids: list[str], index: int) -> ApiError:
    return invalid_request(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(sorted(call_ids))}",
        f"messages.[{index}].role",
    )


def chat_answer_spec(
    request: ChatCompletionRequest, payload: dict[str, Any], deployment: DeploymentConfig
) -> AnswerSpec:
    messages = payload["messages"]
    check_tool_messages(messages)
    functions: list[FunctionSpec] = []
    for index, tool in enumerate(request.tools or []):
        function = tool.function
        _check_schema(function.parameters, bool(function.strict), f"function '{function.name}'",
                      f"tools[{index}].function.parameters", "invalid_function_parameters")
        functions.append(FunctionSpec(function.name, function.parameters))
    choice = request.tool_choice
    mode, named = ("auto" if functions else "none"), None
    if isinstance(choice, NamedToolChoice):
        mode, named = "named", choice.function.name
    elif choice is not None:
        mode = choice
    if mode != "none" and choice is not None and not functions:
        raise invalid_request(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.", "tool_choice"
        )
    if named is not None and all(f.name != named for f in functions):
        raise invalid_request(
            f"Invalid value for 'tool_choice': no function named '{named}' was specified in the 'tools' parameter.",
            "tool_choice",
        )
    output_format, schema = "text", None
    response_format = request.response_format
    if isinstance(response_format, ResponseFormatJsonObject):
        output_format = "json_object"
        if not _mentions_json([t for m in messages if isinstance(m, dict) for t in _texts(m.get("content"))]):
            raise invalid_request(
                "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
                "'json_object'.",
                "messages",
            )
    elif isinstance(response_format, ResponseFormatJsonSchema):
        json_schema = response_format.json_schema
        schema = json_schema.schema_
        output_format = "json_schema" if schema is not None else "json_object"
        _check_schema(schema, bool(json_schema.strict), f"response_format '{json_schema.name}'", "response_format",
                      None)
    last_role = messages[-1].get("role") if messages and isinstance(messages[-1], dict) else None
    return AnswerSpec(
        functions=tuple(functions),
        tool_mode=mode,
        named_function=named,
        tool_call_probability=deployment.tool_call_probability,
        parallel_tool_calls=request.parallel_tool_calls is not False,
        after_tool_output=last_role in ("tool", "function"),
        output_format=output_format,
        json_schema=schema,
        reasoning_effort=_reasoning_effort(deployment, request.reasoning_effort, "reasoning_effort"),
    )


# --- Responses API -----------------------------------------------------------------------------------------
def function_call_outputs_answered(context: list[dict[str, Any]], own_items: list[dict[str, Any]]) -> None:
    """Every `function_call_output` answers a `function_call` of the conversation."""
    calls = {item.get("call_id") for item in (*context, *own_items)
             if isinstance(item, dict) and item.get("type") == "function_call"}
    for item in own_items:
        if isinstance(item, dict) and item.get("type") == "function_call_output" and item.get("call_id") not in calls:
            raise invalid_request(
                f"No tool call found for function call output with call_id {item.get('call_id')}.", "input"
            )


def responses_answer_spec(
    request: ResponsesRequest, items: list[dict[str, Any]], deployment: DeploymentConfig
) -> AnswerSpec:
    functions: list[FunctionSpec] = []
    for index, tool in enumerate(request.tools or []):
        if isinstance(tool, ResponsesFunctionTool):
            _check_schema(tool.parameters, bool(tool.strict), f"function '{tool.name}'", f"tools[{index}].parameters",
                          "invalid_function_parameters")
            functions.append(FunctionSpec(tool.name, tool.parameters))
    choice = request.tool_choice
    mode, named = ("auto" if functions else "none"), None
    if isinstance(choice, ResponsesToolChoiceObject):
        if choice.type == "function":
            mode, named = "named", choice.name
            if all(f.name != named for f in functions):
                raise invalid_request(f"Tool choice 'function' with name '{named}' not found in 'tools' parameter.",
                                      "tool_choice")
        else:
            mode = "none"  # a hosted tool (web search, ...): never called here, answer in words
    elif choice is not None:
        mode = choice if functions else "none"
        if choice == "required" and not request.tools:
            raise invalid_request("Tool choice 'required' must be specified with 'tools' parameter.", "tool_choice")
    output_format, schema = "text", None
    text_format = request.text.format if request.text else None
    if isinstance(text_format, ResponsesTextFormatJsonObject):
        output_format = "json_object"
        texts = [request.instructions or ""]
        texts += [t for item in items if isinstance(item, dict) for t in _texts(item.get("content"))]
        if not _mentions_json(texts):
            raise invalid_request(
                "Response input messages must contain the word 'json' in some form to use 'text.format' of type "
                "'json_object'.",
                "input",
            )
    elif isinstance(text_format, ResponsesTextFormatJsonSchema):
        output_format, schema = "json_schema", text_format.schema_
        _check_schema(schema, bool(text_format.strict), f"response_format '{text_format.name}'",
                      "text.format.schema", None)
    last = items[-1] if items else None
    effort = request.reasoning.effort if request.reasoning else None
    return AnswerSpec(
        functions=tuple(functions),
        tool_mode=mode,
        named_function=named,
        tool_call_probability=deployment.tool_call_probability,
        parallel_tool_calls=request.parallel_tool_calls is not False and request.max_tool_calls != 1,
        after_tool_output=isinstance(last, dict) and last.get("type") == "function_call_output",
        output_format=output_format,
        json_schema=schema,
        compact_arguments=True,
        reasoning_effort=_reasoning_effort(deployment, effort, "reasoning.effort"),
    )
