"""Record mode's forwarding rules: the upstream URL and credentials per surface, and what is never kept."""

from __future__ import annotations

import httpx
import orjson

from recordings_app.recorder import answer_headers, build_target, is_secret_header, parse_event

CLIENT_HEADERS = [
    (b"host", b"127.0.0.1:8000"), (b"api-key", b"client-key-for-the-simulator"),
    (b"authorization", b"Bearer client-key-for-the-simulator"), (b"content-type", b"application/json"),
    (b"content-length", b"42"), (b"accept-encoding", b"gzip"), (b"user-agent", b"AzureOpenAI/Python 2.7.1"),
    (b"x-stainless-retry-count", b"0"), (b"x-simulator-fault", b"500"), (b"connection", b"keep-alive"),
]
BODY = b'{"messages":[{"role":"user","content":"hi"}],"model":"my-deployment"}'


def target(endpoint: str, path: str, query: bytes = b"api-version=2024-10-21", key: str = "UPSTREAM-KEY"):
    return build_target(endpoint=endpoint, key=key, path=path, query_string=query, client_headers=CLIENT_HEADERS,
                        body=BODY, model="gpt-4o-mini")


def test_aoai_upstream_gets_the_same_path_and_query_with_its_own_api_key() -> None:
    forwarded = target("https://res.openai.azure.com/", "/openai/deployments/my-deployment/chat/completions")
    assert forwarded.url == ("https://res.openai.azure.com/openai/deployments/my-deployment/chat/completions"
                             "?api-version=2024-10-21")
    headers = dict(forwarded.headers)
    assert headers["api-key"] == "UPSTREAM-KEY"
    assert "authorization" not in headers  # the client's credentials for the simulator never go upstream
    assert "client-key-for-the-simulator" not in str(forwarded.headers)
    assert headers["accept-encoding"] == "identity"
    assert headers["user-agent"] == "AzureOpenAI/Python 2.7.1"
    assert "x-simulator-fault" not in headers and "host" not in headers and "connection" not in headers
    assert forwarded.body == BODY


def test_aoai_upstream_on_the_openai_surface_uses_the_v1_api() -> None:
    forwarded = target("https://res.openai.azure.com", "/v1/chat/completions", b"")
    assert forwarded.url == "https://res.openai.azure.com/openai/v1/chat/completions"


def test_openai_upstream_gets_the_operation_path_a_bearer_token_and_the_model_name() -> None:
    forwarded = target("https://api.openai.com/v1", "/openai/deployments/my-deployment/chat/completions")
    assert forwarded.url == "https://api.openai.com/v1/chat/completions"  # no api-version
    assert dict(forwarded.headers)["authorization"] == "Bearer UPSTREAM-KEY"
    assert "api-key" not in dict(forwarded.headers)
    assert orjson.loads(forwarded.body)["model"] == "gpt-4o-mini"
    assert target("https://api.openai.com/v1/", "/openai/v1/embeddings", b"").url == \
        "https://api.openai.com/v1/embeddings"


def test_no_key_sends_no_credentials() -> None:
    forwarded = target("http://localhost:9000", "/v1/embeddings", b"", key="")
    names = {name for name, _ in forwarded.headers}
    assert not names & {"api-key", "authorization"}


def test_answer_headers_drop_hop_by_hop_credentials_and_anything_echoing_the_key() -> None:
    upstream = httpx.Headers([
        ("Content-Type", "application/json"), ("Content-Length", "10"), ("Transfer-Encoding", "chunked"),
        ("Connection", "keep-alive"), ("Set-Cookie", "session=abc"), ("x-request-id", "r-1"),
        ("x-ratelimit-remaining-tokens", "900"), ("x-debug", "key was UPSTREAM-KEY"), ("api-key", "x"),
    ])
    kept = dict(answer_headers(upstream, "UPSTREAM-KEY"))
    assert kept == {"content-type": "application/json", "x-request-id": "r-1", "x-ratelimit-remaining-tokens": "900"}


def test_secret_header_names() -> None:
    for name in ("api-key", "Authorization", "ocp-apim-subscription-key", "x-api-key", "set-cookie", "x-secret"):
        assert is_secret_header(name)
    for name in ("x-ratelimit-remaining-tokens", "x-request-id", "openai-organization", "content-type"):
        assert not is_secret_header(name)


def test_parse_event() -> None:
    assert parse_event('data: {"a": 1}') == (None, '{"a": 1}')
    assert parse_event("event: response.created\ndata: {}") == ("response.created", "{}")
    assert parse_event(": keep-alive") is None
    assert parse_event("data: line one\ndata: line two") == (None, "line one\nline two")
    assert parse_event("data:[DONE]") == (None, "[DONE]")
