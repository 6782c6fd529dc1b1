"""The one place that talks to GitHub's REST API (issues, branches, pull requests).

Where and who, from the environment Actions sets: `$GITHUB_API_URL` (default
https://api.github.com), `$GITHUB_REPOSITORY` (owner/name) and `$GITHUB_TOKEN`. The workflow's
`permissions:` (or the GitHub App's, for an App token) must grant what the calls need:
`issues: write`, `pull-requests: write` and `contents: write`.

The token is read from the environment only, never from argv, and goes no further than it must:
`without_tokens` is the environment for child processes that do not talk to GitHub (the
pipeline, DVC), and `git_push_environ` the one for a git that pushes with it, through a
credential helper that answers for `$GITHUB_SERVER_URL` alone (never a URL with the token in it).

`sync_issues` keeps one open issue per monitored cause: each issue carries a hidden marker
(`marker(key)`) as its body's last line, so a cause still breached updates its issue instead of
opening a duplicate, and a cause that cleared has its issue closed.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelops.authorized import open_authorized
from modelops.errors import GitHubError

API_URL_ENV, REPOSITORY_ENV, TOKEN_ENV = "GITHUB_API_URL", "GITHUB_REPOSITORY", "GITHUB_TOKEN"
DEFAULT_API_URL = "https://api.github.com"
SERVER_URL_ENV, DEFAULT_SERVER_URL = "GITHUB_SERVER_URL", "https://github.com"
# Where a git child finds the token to push with: the name .github/scripts/commit-and-push.sh
# reads too. With the other two, the variables taken out of every child that needs no token.
GIT_TOKEN_ENV = "GIT_PUSH_TOKEN"
TOKEN_VARIABLES = (TOKEN_ENV, "GH_TOKEN", GIT_TOKEN_ENV)
# Run by git's shell when the server asks for credentials: `printf` is a builtin there, so the
# token, read from git's environment, is in no process's argv.
_CREDENTIAL_HELPER = (
    '!f() { test "$1" = get && '
    f'printf "username=x-access-token\\npassword=%s\\n" "${GIT_TOKEN_ENV}"; }}; f'
)
API_VERSION = "2022-11-28"
TIMEOUT_SECONDS = 15.0
MARKER = "<!-- modelops-monitor: {key} -->"

_MARKER_PATTERN = re.compile(r"<!-- modelops-monitor: (\S+) -->")
_KEY = re.compile(r"[^\s>]+")
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="next"')
_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_PERMISSIONS_HINT = (
    " (check $GITHUB_TOKEN, and that the workflow's `permissions:` grant issues: write, "
    "pull-requests: write and contents: write)"
)


@dataclass(frozen=True)
class Issue:
    """An issue as GitHub returned it (`url` is its page, html_url)."""

    number: int
    title: str
    body: str
    state: str
    url: str


@dataclass(frozen=True)
class PullRequest:
    """A pull request: its number, page and head branch."""

    number: int
    url: str
    head: str


@dataclass(frozen=True)
class GitHub:
    """One repository on a GitHub API, and the token that authenticates to it."""

    api_url: str
    repository: str
    token: str = field(repr=False)
    timeout: float = TIMEOUT_SECONDS

    def open_issues(self, label: str) -> list[Issue]:
        """Every open issue with `label` (all pages; pull requests are left out)."""
        query = {"state": "open", "labels": label, "per_page": "100"}
        address: str | None = self._url(f"{self._repo}/issues", query)
        issues: list[Issue] = []
        while address is not None:
            page, link = self._send("GET", address)
            if not isinstance(page, list):
                raise GitHubError(f"GitHub answered {page!r:.200} for the issues of {label!r}")
            issues += [_issue(item) for item in page if "pull_request" not in item]
            address = self._next_page(link)
        return issues

    def create_issue(self, title: str, body: str, labels: Sequence[str]) -> Issue:
        """Open an issue with `labels`."""
        payload = {"title": title, "body": body, "labels": list(labels)}
        return _issue(self._call("POST", f"{self._repo}/issues", payload))

    def update_issue(
        self,
        number: int,
        *,
        title: str | None = None,
        body: str | None = None,
        state: str | None = None,
    ) -> Issue:
        """Change the given fields of issue `number` (the others are left as they are)."""
        given = {"title": title, "body": body, "state": state}
        payload = {name: value for name, value in given.items() if value is not None}
        return _issue(self._call("PATCH", f"{self._repo}/issues/{number}", payload))

    def comment(self, number: int, body: str) -> None:
        """Comment on issue (or pull request) `number`."""
        self._call("POST", f"{self._repo}/issues/{number}/comments", {"body": body})

    def close_issue(self, number: int, comment: str) -> Issue:
        """Say why in a comment, then close issue `number`."""
        self.comment(number, comment)
        return self.update_issue(number, state="closed")

    def create_branch(self, name: str, sha: str) -> None:
        """Create branch `name` at commit `sha`; an existing branch is an error."""
        payload = {"ref": f"refs/heads/{name}", "sha": sha}
        try:
            self._call("POST", f"{self._repo}/git/refs", payload)
        except GitHubError as error:
            if error.status == 422 and "already exists" in error.detail.lower():
                raise GitHubError(
                    f"branch {name!r} already exists in {self.repository}: delete it or pick "
                    "another name",
                    status=422,
                    detail=error.detail,
                ) from None
            raise

    def find_pull_request(self, head_branch: str) -> PullRequest | None:
        """The open pull request from `head_branch` of this repository, if there is one."""
        owner = self.repository.split("/", 1)[0]
        query = {"state": "open", "head": f"{owner}:{head_branch}"}
        pulls, _ = self._send("GET", self._url(f"{self._repo}/pulls", query))
        if not isinstance(pulls, list):
            raise GitHubError(f"GitHub answered {pulls!r:.200} for pull requests from {owner}")
        return _pull_request(pulls[0]) if pulls else None

    def create_pull_request(
        self, *, head: str, base: str, title: str, body: str, draft: bool = False
    ) -> PullRequest:
        """Open a pull request from branch `head` into `base`."""
        payload = {"head": head, "base": base, "title": title, "body": body, "draft": draft}
        return _pull_request(self._call("POST", f"{self._repo}/pulls", payload))

    @property
    def _repo(self) -> str:
        return f"/repos/{self.repository}"

    def _url(self, path: str, query: Mapping[str, str] | None = None) -> str:
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        return f"{self.api_url.rstrip('/')}{path}{suffix}"

    # GitHub's answers are parsed JSON of GitHub's shapes, Any until `_issue` and
    # `_pull_request` check them.
    def _call(self, method: str, path: str, payload: Mapping[str, object]) -> Any:
        return self._send(method, self._url(path), payload)[0]

    def _next_page(self, link: str | None) -> str | None:
        found = _NEXT_LINK.search(link or "")
        if found is None:
            return None
        address = found.group(1)
        if not address.startswith(f"{self.api_url.rstrip('/')}/"):
            # The token goes with every request: never to another host.
            raise GitHubError(f"GitHub's next page {address!r} is not under {self.api_url}")
        return address

    def _send(
        self, method: str, address: str, payload: Mapping[str, object] | None = None
    ) -> tuple[Any, str | None]:
        """The decoded JSON answer to one request, and its `Link` header."""
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "modelops",
        }
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(address, data=data, headers=headers, method=method)
        path = urllib.parse.urlsplit(address).path
        try:
            with open_authorized(request, timeout=self.timeout) as answer:
                body, link = answer.read(), answer.headers.get("Link")
        except urllib.error.HTTPError as error:
            detail = _error_detail(error.read())
            raise GitHubError(
                f"GitHub answered {error.code} to {method} {path}: {detail}"
                f"{_hint(error.code, detail)}",
                status=error.code,
                detail=detail,
            ) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise GitHubError(
                f"cannot reach GitHub at {address} ({reason}): check ${API_URL_ENV} and the network"
            ) from None
        if not body.strip():
            return None, link
        try:
            return json.loads(body), link
        except ValueError:
            raise GitHubError(
                f"{address} did not answer JSON to {method}: is ${API_URL_ENV} GitHub's API root?"
            ) from None


def run_url(environ: Mapping[str, str] = os.environ) -> str | None:
    """The GitHub Actions run this process belongs to, when there is one."""
    server, repository, run = (
        environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    return f"{server}/{repository}/actions/runs/{run}" if server and repository and run else None


def without_tokens(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """`environ` without any GitHub token: for the child processes that need none."""
    return {name: value for name, value in environ.items() if name not in TOKEN_VARIABLES}


def git_push_environ(token: str, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment of a git that fetches or pushes with `token`, and of nothing else.

    A credential helper, configured through `GIT_CONFIG_*` variables (nothing is written to a
    config file), hands the token over when `$GITHUB_SERVER_URL` (default https://github.com)
    asks, and to no other host; the helpers configured elsewhere are set aside for that server,
    and git never prompts.
    """
    server = (environ.get(SERVER_URL_ENV) or DEFAULT_SERVER_URL).rstrip("/")
    key = f"credential.{server}.helper"
    return {
        **without_tokens(environ),
        GIT_TOKEN_ENV: token,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": key,
        "GIT_CONFIG_VALUE_0": "",
        "GIT_CONFIG_KEY_1": key,
        "GIT_CONFIG_VALUE_1": _CREDENTIAL_HELPER,
    }


def connect(environ: Mapping[str, str] = os.environ) -> GitHub:
    """The repository to work on, from the variables GitHub Actions sets."""
    api_url = environ.get(API_URL_ENV) or DEFAULT_API_URL
    if not api_url.startswith(("http://", "https://")):
        raise GitHubError(f"${API_URL_ENV} must start with http:// or https://, got {api_url!r}")
    repository = environ.get(REPOSITORY_ENV)
    if not repository:
        raise GitHubError(
            f"no repository to work on: set ${REPOSITORY_ENV} to owner/name (Actions sets it)"
        )
    if not _REPOSITORY.fullmatch(repository):
        raise GitHubError(f"${REPOSITORY_ENV} must look like owner/name, got {repository!r}")
    token = environ.get(TOKEN_ENV)
    if not token:
        raise GitHubError(
            f"no GitHub token: set ${TOKEN_ENV} (in a workflow, give the step "
            "`GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}` under `env:`)"
        )
    return GitHub(api_url=api_url, repository=repository, token=token)


def connect_if_configured(environ: Mapping[str, str] = os.environ) -> GitHub | None:
    """`connect`, or None where neither a repository nor a token is set (a person's machine:
    the caller pushes and leaves the pull request to them). Half a configuration is refused."""
    if not environ.get(REPOSITORY_ENV) and not environ.get(TOKEN_ENV):
        return None
    return connect(environ)


def marker(key: str) -> str:
    """The hidden line that ties an issue to the cause `key` (e.g. "production/feature_drift")."""
    if not _KEY.fullmatch(key) or "--" in key:
        raise ValueError(f"an issue key must be non-empty, without spaces, '>' or '--': {key!r}")
    return MARKER.format(key=key)


def sync_issues(
    github: GitHub,
    *,
    label: str,
    scope: str,
    open_causes: Mapping[str, tuple[str, str]],
    cleared_comment: str,
) -> list[tuple[str, str, int]]:
    """One open issue per breached cause; close the issues of causes in `scope` that cleared.

    `open_causes` maps a key to the (title, body) of its issue. Returns (action, key, number)
    with action "created", "updated" or "closed": the causes by key, then the closings.
    """
    outside = sorted(key for key in open_causes if not key.startswith(scope))
    if outside:
        raise ValueError(f"causes outside the scope {scope!r}: {', '.join(outside)}")
    mine: dict[str, list[Issue]] = {}
    for issue in github.open_issues(label):
        key = _marker_key(issue.body)
        if key is not None and key.startswith(scope):
            mine.setdefault(key, []).append(issue)
    actions: list[tuple[str, str, int]] = []
    for key in sorted(open_causes):
        title, body = open_causes[key]
        text = f"{body.rstrip()}\n\n{marker(key)}"
        existing = sorted(mine.get(key, []), key=lambda issue: issue.number)
        if existing:
            github.update_issue(existing[0].number, title=title, body=text)
            actions.append(("updated", key, existing[0].number))
        else:
            actions.append(("created", key, github.create_issue(title, text, [label]).number))
    closings: list[tuple[str, int, str]] = []
    for key, issues in mine.items():
        ordered = sorted(issues, key=lambda issue: issue.number)
        if key not in open_causes:
            closings += [(key, issue.number, cleared_comment) for issue in ordered]
        else:
            # Duplicates (e.g. from two runs at once): keep the oldest, close the rest.
            keep = ordered[0].number
            closings += [(key, issue.number, f"Duplicate of #{keep}.") for issue in ordered[1:]]
    for key, number, comment in sorted(closings):
        github.close_issue(number, comment)
        actions.append(("closed", key, number))
    return actions


def _marker_key(body: str) -> str | None:
    found = _MARKER_PATTERN.findall(body)
    return str(found[-1]) if found else None


def _issue(item: Any) -> Issue:
    try:
        return Issue(
            number=int(item["number"]),
            title=str(item["title"]),
            body=str(item.get("body") or ""),
            state=str(item["state"]),
            url=str(item["html_url"]),
        )
    except (TypeError, KeyError, ValueError, AttributeError):
        raise GitHubError(
            f"GitHub answered something that is not an issue: {item!r:.200}"
        ) from None


def _pull_request(item: Any) -> PullRequest:
    try:
        return PullRequest(
            number=int(item["number"]), url=str(item["html_url"]), head=str(item["head"]["ref"])
        )
    except (TypeError, KeyError, ValueError):
        raise GitHubError(
            f"GitHub answered something that is not a pull request: {item!r:.200}"
        ) from None


def _error_detail(body: bytes) -> str:
    try:
        answer = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace") or "(no body)"
    if not isinstance(answer, dict):
        return str(answer)[:200]
    detail = str(answer.get("message", answer))
    errors = answer.get("errors")
    if isinstance(errors, list) and errors:
        parts = [
            str(e.get("message") or f"{e.get('field')} {e.get('code')}")
            if isinstance(e, dict)
            else str(e)
            for e in errors
        ]
        detail += f" ({'; '.join(parts)})"
    return detail


def _hint(status: int, detail: str) -> str:
    if status in (403, 429) and "rate limit" in detail.lower():
        return " (GitHub's rate limit: try again later)"
    return _PERMISSIONS_HINT if status in (401, 403) else ""
