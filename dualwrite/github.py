"""One comment per stack on a pull request, created once and updated in place (GitHub REST API).

Runs inside GitHub Actions: GITHUB_TOKEN (the workflow's token, `pull-requests: write`),
GITHUB_REPOSITORY, GITHUB_API_URL and GITHUB_EVENT_PATH (the pull_request event) are set
there. The comment is found by its marker line (dualwrite/pr_comment.py MARKER). The token
is sent in a header only and never printed.
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

from dualwrite.pr_comment import MARKER


class GitHubError(RuntimeError):
    """Not in a pull-request workflow, or the API refused."""


def _call(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    token = os.environ.get("GITHUB_TOKEN")
    if not token:
        raise GitHubError("post-comment: GITHUB_TOKEN is not set; allowed: run it in the pull_request workflow "
                          "with `env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}` and `pull-requests: write`.")
    request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}",
                                              "Accept": "application/vnd.github+json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raise GitHubError(f"post-comment: GitHub answered {error.code} to {method} {url}") from None


def upsert_pr_comment(stack: str, body: str) -> str:
    event_path = os.environ.get("GITHUB_EVENT_PATH", "")
    if not os.path.isfile(event_path):
        raise GitHubError("post-comment: GITHUB_EVENT_PATH names no event file; allowed: the pull_request workflow.")
    with open(event_path, encoding="utf-8") as handle:
        number = (json.load(handle).get("pull_request") or {}).get("number")
    if not number:
        raise GitHubError("post-comment: the event is not a pull request; allowed: on: pull_request.")
    api = os.environ.get("GITHUB_API_URL", "https://api.github.com")
    base = f"{api}/repos/{os.environ['GITHUB_REPOSITORY']}/issues"
    marker = MARKER.format(stack=stack)
    page = 1
    while True:
        comments = _call("GET", f"{base}/{number}/comments?per_page=100&page={page}")
        for comment in comments:
            if marker in (comment.get("body") or ""):
                _call("PATCH", f"{base}/comments/{comment['id']}", {"body": body})
                return f"updated comment {comment['id']} on #{number}"
        if len(comments) < 100:
            break
        page += 1
    created = _call("POST", f"{base}/{number}/comments", {"body": body})
    return f"created comment {created['id']} on #{number}"
