"""Posting the dashboard's forms as a browser would: with the CSRF token its pages hand out."""

from __future__ import annotations

import re
from typing import Any

from starlette.testclient import TestClient

TOKEN = "a-token-of-24-characters"  # the dashboard token of the `guarded` client


def csrf_of(client: TestClient) -> str:
    """The CSRF token a page hands out (and the cookie it set), as a browser would see it."""
    page = client.get("/")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if match is None:  # pages without forms still set the cookie
        return str(client.cookies["durq_csrf"])
    assert match.group(1) == client.cookies["durq_csrf"]
    return match.group(1)


def post(client: TestClient, url: str, **fields: str) -> Any:
    data = {"csrf_token": csrf_of(client), **fields}
    return client.post(url, data=data, follow_redirects=False)


def flash_after(client: TestClient, response: Any) -> str:
    """Follow an action's 303 and return the flash message shown on the page."""
    assert response.status_code == 303, response.text
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    match = re.search(r'<p class="flash flash-(ok|error)" role="status">(.*?)</p>', page.text)
    assert match is not None, page.text
    return f"{match.group(1)}: {match.group(2)}"
