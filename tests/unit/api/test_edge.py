"""The edge's pure checks: NUL characters in a raw body, control characters in a request line."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kumo.api.edge import holds_lone_surrogate, holds_nul, request_line_refusal, streams_body


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings(v))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


@pytest.mark.parametrize(
    "body, nul",
    [
        (rb'{"name": "a\u0000b"}', True),
        (rb'{"\u0000": 1}', True),
        (rb'{"name": "\u00001"}', True),  # NUL, then "1"
        (rb'{"name": "C:\\u0000"}', False),  # an escaped backslash, then "u0000"
        (rb'{"name": "\\\u0000"}', True),  # an escaped backslash, then NUL
        (rb'{"name": "\\\\u0000"}', False),  # two escaped backslashes, then "u0000"
        (rb'{"name": "\u0001\u000a\t"}', False),  # other control characters stay legal in bodies
        (rb'{"a": "\\", "b": "\u0000"}', True),
        (rb'{"a": "\\u0000", "b": "\u0000"}', True),  # the second one counts
        (rb'{"name": "line\nnext\ttab"}', False),
        (b'{"name": "raw\x00"}', True),
        (b"", False),
        (rb"\u0000", True),
    ],
)
def test_holds_nul(body: bytes, nul: bool) -> None:
    assert holds_nul(body) is nul


@pytest.mark.parametrize(
    "text", ["a\x00b", "C:\\u0000", "\\\x00", "\\\\u0000\x00", "plain", "\n\t\r", "é\x00"]
)
def test_holds_nul_agrees_with_a_json_parser(text: str) -> None:
    for body in (json.dumps({"k": text}), json.dumps({"k": [text, {text: text}]}, ensure_ascii=False)):
        parsed_nul = any("\x00" in s for s in _strings(json.loads(body)))
        assert holds_nul(body.encode()) is parsed_nul, body


@pytest.mark.parametrize(
    "body, lone",
    [
        (rb'{"name": "a\ud800"}', True),
        (rb'{"name": "a\udfffb"}', True),  # a low surrogate alone
        (rb'{"name": "\ude00\ud83d"}', True),  # low then high: not a pair
        (rb'{"\uDBFF": ["x"]}', True),  # in a key, upper-case hex
        (rb'{"a": [{"b": "\ud800"}]}', True),
        (rb'{"name": "\ud83d\ude00"}', False),  # an emoji, escaped as a pair
        ('{"name": "😀"}'.encode(), False),  # the same emoji as UTF-8
        (rb'{"name": "C:\\ud800"}', False),  # an escaped backslash, then "ud800"
        (rb'{"name": "\ud800', False),  # not JSON: the route refuses it
        (rb'{"name": "\u0041"}', False),
    ],
)
def test_holds_lone_surrogate(body: bytes, lone: bool) -> None:
    assert holds_lone_surrogate(body) is lone


@pytest.mark.parametrize(
    "path, query, refused",
    [
        ("/compute/v2.1/servers/\x00", b"", True),
        ("/compute/v2.1/servers/a\nb", b"", True),
        ("/compute/v2.1/servers/a\x7f", b"", True),
        ("/compute/v2.1/servers", b"name=%00", True),
        ("/compute/v2.1/servers", b"name=a%0Ab", True),
        ("/compute/v2.1/servers", b"name=a%09", True),
        ("/compute/v2.1/servers", b"name=a%7f", True),
        ("/compute/v2.1/servers/é", b"name=%C3%A9&limit=5", False),
        ("/compute/v2.1/servers", b"name=a+b%20c%25", False),
        ("/compute/v2.1/servers", b"name=%zz", False),  # not an escape: the route decides
    ],
)
def test_request_line_refusal(path: str, query: bytes, refused: bool) -> None:
    assert (request_line_refusal(path, query) is not None) is refused


@pytest.mark.parametrize(
    "method, path, streams",
    [
        ("PUT", "/image/v2/images/abc/file", True),
        ("PUT", "/image/v2/images/abc/stage", False),  # not served: bounded like any body
        ("GET", "/image/v2/images/abc/file", False),
        ("PATCH", "/image/v2/images/abc", False),
        ("PUT", "/image/v2/images/abc/tags/file", False),
        ("PUT", "/placement/allocations/abc", False),
    ],
)
def test_only_image_data_uploads_stream(method: str, path: str, streams: bool) -> None:
    assert streams_body({"method": method, "path": path}) is streams
