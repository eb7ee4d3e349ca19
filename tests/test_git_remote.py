"""git_remote against real git repositories made in tmp_path (a bare "remote" and a working clone).

Behaviours covered:
- listing refs in one call through a local path and file:// URLs; annotated tags are peeled;
- unreachable repositories and refused transports are errors naming the URL; a hung server times out;
- resolving full shas, short shas (ref tips and older commits), branch and tag names; missing and
  ambiguous ones are refused;
- pushing a tag from a scratch repository (no clone): the tag lands on the right commit, pushing
  the same tag twice is fine, moving a tag is refused, a rejected push is retried and reported.

`GitRepos` is reused by the other git test modules (generate, mark-for-deployment, start/stop).
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from git_builders import GitRepos

from paasta_lite.gitflow.remote import (
    CommitNotFoundError,
    GitRemoteError,
    GitTimeoutError,
    PushRejectedError,
    RemoteRepo,
    absolute_url,
    list_refs,
    parse_ls_remote,
    resolve_from_refs,
)


def test_list_refs_local_path_and_file_url(repos: GitRepos) -> None:
    sha = repos.commit()
    repos.tag("paasta-prod.main-20240101T000000-deploy", sha)
    expected = {"refs/heads/main": sha, "refs/tags/paasta-prod.main-20240101T000000-deploy": sha}
    for url in (repos.url, f"file://{repos.url}"):
        refs = list_refs(url)
        assert {k: v for k, v in refs.items() if k != "HEAD"} == expected


def test_annotated_tags_are_peeled_to_the_commit(repos: GitRepos) -> None:
    sha = repos.commit()
    repos.tag("paasta-prod.main-20240101T000000-deploy", sha, annotated=True)
    assert list_refs(repos.url)["refs/tags/paasta-prod.main-20240101T000000-deploy"] == sha


def test_parse_ls_remote_ignores_peel_without_tag_and_junk() -> None:
    out = f"{'a' * 40}\trefs/tags/x\n{'b' * 40}\trefs/tags/x^{{}}\n{'c' * 40}\trefs/tags/y^{{}}\njunk\n"
    assert parse_ls_remote(out) == {"refs/tags/x": "b" * 40}


def test_unreachable_repository_names_the_url(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.git")
    with pytest.raises(GitRemoteError, match=re.escape(f"git repository {missing}: cannot list refs")):
        list_refs(missing)


@pytest.mark.parametrize("url", ["ext::sh -c touch% /tmp/x", "-uhoh"])
def test_dangerous_urls_are_refused(url: str) -> None:
    with pytest.raises(GitRemoteError, match="git repository"):
        list_refs(url)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts and never answers: a hung git daemon."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_hung_server_times_out(silent_server: int) -> None:
    url = f"git://127.0.0.1:{silent_server}/service.git"
    with pytest.raises(GitTimeoutError, match=re.escape(f"git repository {url}: no answer within 1s")):
        list_refs(url, timeout=1)


def test_resolve_full_short_and_named(repos: GitRepos) -> None:
    old = repos.commit("one")
    head = repos.commit("two")
    repos.tag("v1.0", old, annotated=True)
    with RemoteRepo(repos.url) as remote:
        assert remote.resolve_commit(head) == head
        assert remote.resolve_commit(old) == old  # full sha of a non-tip commit: checked by fetch
        assert remote.resolve_commit(head[:7]) == head  # short sha of a ref tip
        assert remote.resolve_commit("main") == head
        assert remote.resolve_commit("refs/heads/main") == head
        assert remote.resolve_commit("v1.0") == old
        assert remote.resolve_commit(old[:8].upper()) == old


def test_resolve_short_sha_of_an_older_commit(repos: GitRepos) -> None:
    old = repos.commit("one")
    repos.commit("two")
    repos.commit("three")
    with RemoteRepo(repos.url) as remote:
        assert remote.resolve_commit(old[:10]) == old


def test_resolve_refuses_missing_commits(repos: GitRepos) -> None:
    repos.commit()
    local_only = repos.commit("not pushed", push=False)
    with RemoteRepo(repos.url) as remote:
        with pytest.raises(CommitNotFoundError, match="does not exist there"):
            remote.resolve_commit(local_only)
        with pytest.raises(CommitNotFoundError, match="cannot resolve"):
            remote.resolve_commit(local_only[:9])
        with pytest.raises(CommitNotFoundError, match="neither a ref nor a sha"):
            remote.resolve_commit("no-such-branch")


def test_resolve_refuses_ambiguous_prefix() -> None:
    refs = {"refs/heads/a": "abc1" + "0" * 36, "refs/heads/b": "abc1" + "1" * 36}
    with pytest.raises(ValueError, match="ambiguous"):
        resolve_from_refs("abc1", refs)
    assert resolve_from_refs("abc10", refs) == "abc1" + "0" * 36


def test_push_tag_without_a_clone(repos: GitRepos) -> None:
    old = repos.commit("one")
    repos.commit("two")
    with RemoteRepo(repos.url) as remote:
        remote.push_tag(old, "paasta-prod.main-20240101T000000-deploy")
        remote.push_tag(old, "paasta-prod.main-20240101T000000-deploy")  # idempotent
        with pytest.raises(PushRejectedError, match="already exists"):
            remote.push_tag(repos.commits[1], "paasta-prod.main-20240101T000000-deploy")
        scratch = remote._scratch
    assert repos.remote_tags() == {"refs/tags/paasta-prod.main-20240101T000000-deploy": old}
    assert scratch is not None and not os.path.exists(scratch)


def test_push_tag_over_file_url(repos: GitRepos) -> None:
    sha = repos.commit()
    with RemoteRepo(f"file://{repos.url}") as remote:
        remote.push_tag(sha, "paasta-a-20240101T000000-deploy")
    assert repos.remote_tags() == {"refs/tags/paasta-a-20240101T000000-deploy": sha}


def test_rejected_push_is_retried(repos: GitRepos) -> None:
    sha = repos.commit()
    counter = repos.reject_pushes(2)
    sleeps: list[float] = []
    with RemoteRepo(repos.url, sleep=sleeps.append) as remote:
        remote.push_tag(sha, "paasta-a-20240101T000000-deploy", attempts=3, retry_delay=0.5)
    assert counter.read_text().strip() == "3"
    assert sleeps == [0.5, 1.0]
    assert repos.remote_tags() == {"refs/tags/paasta-a-20240101T000000-deploy": sha}


def test_push_rejected_every_time_is_an_error(repos: GitRepos) -> None:
    sha = repos.commit()
    repos.reject_pushes(10)
    with (
        RemoteRepo(repos.url, sleep=lambda _: None) as remote,
        pytest.raises(PushRejectedError, match=r"failed 3 times.*busy, try again"),
    ):
        remote.push_tag(sha, "paasta-a-20240101T000000-deploy")
    assert repos.remote_tags() == {}


def test_push_of_a_commit_the_remote_lacks(repos: GitRepos) -> None:
    repos.commit()
    local_only = repos.commit("not pushed", push=False)
    with RemoteRepo(repos.url) as remote, pytest.raises(CommitNotFoundError, match=local_only):
        remote.push_tag(local_only, "paasta-a-20240101T000000-deploy")


def test_timeout_kills_git_helpers_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # git runs `$GIT_SSH_COMMAND host git-upload-pack ...` through sh: sleep is a grandchild
    # that would keep our pipes open if only git were killed.
    monkeypatch.setenv("GIT_SSH_COMMAND", "sleep 30 #")
    started = time.monotonic()
    with pytest.raises(GitTimeoutError, match=re.escape("ssh://example.invalid/repo")):
        list_refs("ssh://example.invalid/repo", timeout=1)
    assert time.monotonic() - started < 5


def test_relative_local_path_works_for_listing_and_pushing(
    repos: GitRepos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = repos.commit()
    monkeypatch.chdir(tmp_path)
    assert list_refs("remote.git")["refs/heads/main"] == sha
    with RemoteRepo("./remote.git") as remote:
        remote.push_tag(sha, "paasta-a-20240101T000000-deploy")
    assert repos.remote_tags() == {"refs/tags/paasta-a-20240101T000000-deploy": sha}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ("ssh://git@host/repo", "ssh://git@host/repo"),
        ("/abs/repo", "/abs/repo"),
        ("./odd:name", os.path.abspath("./odd:name")),
    ],
)
def test_absolute_url(url: str, expected: str) -> None:
    assert absolute_url(url) == expected
