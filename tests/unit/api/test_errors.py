"""Glance's error answers: webob's negotiation between HTML, JSON and plain text by Accept."""

from __future__ import annotations

import json

import pytest

from kumo.api.errors import error_response


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        ("*/*", "text/html"),
        ("text/*", "text/html"),
        ("text/html", "text/html"),
        ("application/json", "application/json"),
        ("application/json, */*;q=0.5", "application/json"),
        ("text/html;q=0.1, application/json", "application/json"),
        ("application/*", "application/json"),
        ("application/json;q=0, */*", "text/html"),
        ("", "text/plain"),
        ("text/plain", "text/plain"),
        ("image/png", "text/plain"),
        ("*/*;q=0", "text/plain"),
        ("TEXT/HTML", "text/html"),
    ],
)
def test_glance_errors_are_negotiated(accept: str, media_type: str) -> None:
    response = error_response("/image/v2/images/x", 404, "No image found with ID x", accept=accept)
    assert response.status_code == 404
    assert response.headers["content-type"].split(";")[0] == media_type


def test_glance_error_bodies_are_webobs() -> None:
    message = "Bad <thing> & more"
    page = error_response("/image/v2/images", 400, message, accept="*/*").body.decode()
    assert "<title>400 Bad Request</title>" in page and "<h1>400 Bad Request</h1>" in page
    assert "Bad &lt;thing&gt; &amp; more<br /><br />" in page
    body = json.loads(error_response("/image/v2/images", 400, message, accept="application/json").body)
    assert body == {
        "message": f"{message}<br /><br />\n\n\n",
        "code": "400 Bad Request",
        "title": "Bad Request",
    }
    plain = error_response("/image/v2/images", 400, "two\nlines", accept="").body.decode()
    assert plain == "400 Bad Request\n\ntwo lines\n\n   "


def test_other_services_keep_their_json_whatever_the_accept() -> None:
    response = error_response("/compute/v2.1/servers", 404, "gone", accept="text/html")
    assert json.loads(response.body) == {"itemNotFound": {"code": 404, "message": "gone"}}
