"""The GitHub client and issue de-duplication, against a local stand-in for GitHub's REST API.

The stand-in (tests/github_fake.py) keeps issues, comments, refs and pull requests in memory,
pages issue lists with a `Link` header, records every request, and is shut down by the fixture
that started it.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops.errors import GitHubError
from modelops.github import (
    GitHub,
    connect,
    connect_if_configured,
    git_push_environ,
    marker,
    sync_issues,
    without_tokens,
)
from tests import git_http
from tests.github_fake import TOKEN, Fake, serve
from tests.support import git


def _sync(github: GitHub, causes: dict[str, tuple[str, str]], scope: str = "production/"):
    return sync_issues(
        github, label="monitor", scope=scope, open_causes=causes, cleared_comment="ok now"
    )


@pytest.fixture
def fake() -> Iterator[Fake]:
    with serve() as running:
        yield running


@pytest.fixture
def github(fake: Fake) -> GitHub:
    return GitHub(api_url=fake.url, repository="octo/repo", token=TOKEN, timeout=5)


def test_issues_are_listed_across_pages_without_pull_requests(fake: Fake, github: GitHub) -> None:
    wanted = [fake.add(f"issue {n}") for n in range(4)]
    fake.add("a pull request", pull_request={"url": "..."})
    fake.add("other label", labels=("bug",))
    fake.add("closed", state="closed")
    wanted.append(fake.add("last"))
    assert [issue.number for issue in github.open_issues("monitor")] == wanted
    assert [r.path for r in fake.requests] == ["/repos/octo/repo/issues"] + [
        "/repositories/1/issues"
    ] * 2
    assert fake.requests[0].query == {"state": "open", "labels": "monitor", "per_page": "100"}
    for request in fake.requests:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["accept"] == "application/vnd.github+json"
        assert request.headers["x-github-api-version"] == "2022-11-28"
        assert request.headers["user-agent"] == "modelops"
    assert TOKEN not in repr(github)


def test_issue_calls_send_only_the_given_fields(fake: Fake, github: GitHub) -> None:
    issue = github.create_issue("Drift", "body", ["monitor", "production"])
    assert (issue.number, issue.title, issue.state) == (1, "Drift", "open")
    assert issue.url == "https://github.test/octo/repo/issues/1"
    assert fake.requests[-1].body == {
        "title": "Drift",
        "body": "body",
        "labels": ["monitor", "production"],
    }
    assert github.update_issue(1, body="new").body == "new"
    assert fake.requests[-1].method == "PATCH"
    assert fake.requests[-1].body == {"body": "new"}
    closed = github.close_issue(1, "all clear")
    assert closed.state == "closed"
    assert fake.comments[1] == ["all clear"]
    assert fake.writes()[-2:] == [
        ("POST", "/repos/octo/repo/issues/1/comments"),
        ("PATCH", "/repos/octo/repo/issues/1"),
    ]
    assert fake.requests[-1].body == {"state": "closed"}


def test_sync_updates_creates_and_closes_only_within_its_scope(fake: Fake, github: GitHub) -> None:
    drift = fake.add("old drift", f"old text\n\n{marker('production/feature_drift')}")
    cleared = fake.add("labels", f"gone\n\n{marker('production/label_drift')}")
    staging = fake.add("staging", f"other\n\n{marker('staging/feature_drift')}")
    pull = fake.add("a PR", f"{marker('production/old')}", pull_request={"url": "..."})
    manual = fake.add("filed by hand", "no marker")
    causes = {
        "production/quality": ("Quality fell", "accuracy 0.70"),
        "production/feature_drift": ("Drift on 3 features", "age, plan, tenure"),
    }
    actions = _sync(github, causes)
    created = manual + 1
    assert actions == [
        ("updated", "production/feature_drift", drift),
        ("created", "production/quality", created),
        ("closed", "production/label_drift", cleared),
    ]
    assert fake.issues[drift]["title"] == "Drift on 3 features"
    assert fake.issues[drift]["body"].splitlines()[-1] == marker("production/feature_drift")
    assert fake.issues[drift]["body"].startswith("age, plan, tenure\n")
    assert fake.issues[created]["labels"] == [{"name": "monitor"}]
    assert fake.issues[created]["body"] == f"accuracy 0.70\n\n{marker('production/quality')}"
    assert fake.issues[cleared]["state"] == "closed"
    assert fake.comments == {cleared: ["ok now"]}
    untouched = {staging, pull, manual}
    assert all(fake.issues[n]["state"] == "open" for n in untouched)
    assert fake.touched() == {drift, cleared}

    fake.requests.clear()
    again = _sync(github, causes)
    assert [action for action, _, _ in again] == ["updated", "updated"]
    assert ("POST", "/repos/octo/repo/issues") not in fake.writes()


def test_sync_closes_duplicates_and_rejects_causes_outside_its_scope(
    fake: Fake, github: GitHub
) -> None:
    first = fake.add("drift", marker("production/feature_drift"))
    second = fake.add("drift again", marker("production/feature_drift"))
    actions = _sync(github, {"production/feature_drift": ("Drift", "now")})
    assert actions == [
        ("updated", "production/feature_drift", first),
        ("closed", "production/feature_drift", second),
    ]
    assert fake.comments == {second: [f"Duplicate of #{first}."]}
    with pytest.raises(ValueError, match="outside the scope"):
        _sync(github, {"production/x": ("t", "b")}, scope="staging/")
    with pytest.raises(ValueError, match="issue key"):
        marker("bad key -->")


def test_branches_and_pull_requests(fake: Fake, github: GitHub) -> None:
    github.create_branch("retrain/1", "abc123")
    assert fake.requests[-1].body == {"ref": "refs/heads/retrain/1", "sha": "abc123"}
    with pytest.raises(GitHubError, match="branch 'retrain/1' already exists in octo/repo"):
        github.create_branch("retrain/1", "abc123")
    assert github.find_pull_request("retrain/1") is None
    assert fake.requests[-1].query == {"state": "open", "head": "octo:retrain/1"}
    pull = github.create_pull_request(
        head="retrain/1", base="main", title="Retrain", body="why", draft=True
    )
    sent = {"head": "retrain/1", "base": "main", "title": "Retrain", "body": "why", "draft": True}
    assert fake.requests[-1].body == sent
    assert github.find_pull_request("retrain/1") == pull
    assert pull.head == "retrain/1"
    assert pull.url == f"https://github.test/octo/repo/pull/{pull.number}"


def test_refusals_and_unreachable_hosts_are_clear_errors(fake: Fake, github: GitHub) -> None:
    intruder = GitHub(api_url=fake.url, repository="octo/repo", token="wrong")
    with pytest.raises(
        GitHubError, match=r"401 to GET /repos/octo/repo/issues: Bad credentials"
    ) as e:
        intruder.open_issues("monitor")
    assert "GITHUB_TOKEN" in str(e.value)
    assert "issues: write, pull-requests: write and contents: write" in str(e.value)
    with pytest.raises(GitHubError, match=r"404 to PATCH /repos/octo/repo/issues/99: Not Found$"):
        github.update_issue(99, state="closed")
    with pytest.raises(GitHubError, match=r"422 .*Validation Failed \(title missing_field\)"):
        github.create_issue("", "body", [])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gone = GitHub(api_url=f"http://127.0.0.1:{port}", repository="octo/repo", token=TOKEN)
    with pytest.raises(GitHubError, match=rf"cannot reach GitHub at http://127\.0\.0\.1:{port}/"):
        gone.comment(1, "hello")
    for n in range(3):
        fake.add(f"issue {n}")
    fake.url = "http://elsewhere.test"
    with pytest.raises(GitHubError, match=r"next page 'http://elsewhere\.test/.*' is not under"):
        github.open_issues("monitor")
    assert all(r.headers["host"].startswith("127.0.0.1") for r in fake.requests)


def test_connect_reads_the_actions_environment() -> None:
    ok = {"GITHUB_REPOSITORY": "octo/repo", "GITHUB_TOKEN": "t"}
    assert connect(ok) == GitHub(
        api_url="https://api.github.com", repository="octo/repo", token="t"
    )
    enterprise = {**ok, "GITHUB_API_URL": "https://ghe.test/api/v3"}
    assert connect(enterprise).api_url == "https://ghe.test/api/v3"
    with pytest.raises(GitHubError, match=r"set \$GITHUB_TOKEN"):
        connect({**ok, "GITHUB_TOKEN": ""})
    with pytest.raises(GitHubError, match=r"set \$GITHUB_REPOSITORY to owner/name"):
        connect({"GITHUB_TOKEN": "t"})
    with pytest.raises(GitHubError, match=r"must look like owner/name, got 'octo'"):
        connect({**ok, "GITHUB_REPOSITORY": "octo"})
    with pytest.raises(GitHubError, match=r"must start with http"):
        connect({**ok, "GITHUB_API_URL": "api.github.com"})


def test_off_github_nothing_is_configured_and_retraining_by_hand_only_pushes() -> None:
    # `modelops retrain --force --remote origin` on a person's machine: no repository, no token.
    assert connect_if_configured({}) is None
    assert connect_if_configured({"GITHUB_API_URL": "https://ghe.test/api/v3"}) is None
    ok = {"GITHUB_REPOSITORY": "octo/repo", "GITHUB_TOKEN": "t"}
    assert connect_if_configured(ok) == connect(ok)
    with pytest.raises(GitHubError, match=r"set \$GITHUB_TOKEN"):
        connect_if_configured({"GITHUB_REPOSITORY": "octo/repo"})


def test_children_that_need_no_token_get_none_and_git_gets_it_for_its_server_alone(
    tmp_path: Path,
) -> None:
    # Given a process that holds GitHub tokens, the environment of a child that does not talk
    # to GitHub (DVC, the pipeline) holds none; a git pushing with the token authenticates to
    # $GITHUB_SERVER_URL through the credential helper, with the token in no URL and no file,
    # and a server elsewhere never receives it.
    held = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GITHUB_TOKEN": TOKEN}
    held |= {"GH_TOKEN": "gh", "GIT_PUSH_TOKEN": "push", "GITHUB_REPOSITORY": "octo/repo"}
    assert without_tokens(held) == {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "GITHUB_REPOSITORY": "octo/repo",
    }
    git(tmp_path, "init", "--quiet", "--bare", "remote.git")
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "--quiet", "--initial-branch=main")
    (work / "a.txt").write_text("a\n")
    git(work, "add", "a.txt")
    git(work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "a")
    with git_http.serve(tmp_path, TOKEN) as server:
        push = ["git", "push", "--quiet", f"{server.url}/remote.git", "main"]

        def pushed(environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
            return subprocess.run(push, cwd=work, env=environ, capture_output=True, text=True)

        elsewhere = pushed(git_push_environ(TOKEN, {**held, "GITHUB_SERVER_URL": "https://gh.x"}))
        assert elsewhere.returncode != 0
        assert not any(ok for _, _, ok in server.seen), "the token went to no other server"
        done = pushed(git_push_environ(TOKEN, {**held, "GITHUB_SERVER_URL": server.url}))
        assert done.returncode == 0, done.stderr
        assert server.seen[-1][2], "git sent the token when asked"
    assert git(tmp_path / "remote.git", "log", "--format=%s", "main").split() == ["a"]
    environ = git_push_environ(TOKEN, held)
    assert environ["GIT_PUSH_TOKEN"] == TOKEN
    assert "GITHUB_TOKEN" not in environ
    assert "GH_TOKEN" not in environ
    assert TOKEN not in "".join(v for k, v in environ.items() if k != "GIT_PUSH_TOKEN")
    assert TOKEN not in (work / ".git" / "config").read_text()
