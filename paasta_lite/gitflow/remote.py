"""The only module that runs git: list a repository's refs, resolve a commit, push a tag.

Every call works on a URL (local path, ``file://``, ``ssh://``, scp-style ``host:path``,
``git://``, ``https://``) and never needs a clone of the service's repository:

- `list_refs` is one ``git ls-remote`` (annotated tags are peeled to their commit).
- `RemoteRepo.push_tag` works in a throw-away bare repository: ``git fetch --depth=1
  --filter=tree:0 origin <sha>`` fetches the one commit object (servers without filter support
  send that commit's snapshot instead, with a harmless warning), then ``git push`` with
  ``push.negotiate`` lets the server say it already has the commit, so the push sends an empty
  pack and only creates the ref. This is the git-CLI equivalent of PaaSTA's dulwich
  ``send_pack`` without objects, works for every transport git supports, and doubles as the
  check that the commit exists on the remote (the fetch fails otherwise).

Hardening: ``GIT_TERMINAL_PROMPT=0`` and ssh ``BatchMode`` so nothing ever prompts, stdin closed,
a timeout on every call, only the ``file git ssh http https`` transports (no ``ext::`` command
execution from a URL), and URLs starting with ``-`` refused. Errors are `GitRemoteError`s that
name the URL and carry git's last lines of stderr.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType

from paasta_lite.errors import NotConfiguredError, PaastaLiteError

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_PUSH_ATTEMPTS = 3
ALLOWED_PROTOCOLS = "file:git:ssh:http:https"

_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
_SHORT_SHA = re.compile(r"^[0-9a-f]{4,40}$")


class GitRemoteError(PaastaLiteError):
    """A git operation on a remote repository failed; the message names the URL."""

    def __init__(self, url: str, message: str) -> None:
        self.url = url
        super().__init__(f"git repository {url}: {message}")


class GitTimeoutError(GitRemoteError):
    """git did not answer in time (unreachable host, hung ssh)."""


class CommitNotFoundError(GitRemoteError):
    """The commit (sha or ref) does not exist in the repository."""


class PushRejectedError(GitRemoteError):
    """The remote refused the tag after every attempt."""


def require_git_url(git_url: str | None, service_dir: str) -> str:
    """service.yaml's ``git_url``; paasta_lite has no site-wide default, so missing is an error."""
    if not git_url:
        raise NotConfiguredError(
            f"{service_dir}/service.yaml has no git_url: cannot find or push the service's deploy tags"
        )
    return git_url


def git_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every git call runs with: never prompt, never run a URL's command."""
    env = dict(os.environ if base is None else base)
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_ALLOW_PROTOCOL"] = ALLOWED_PROTOCOLS
    env.setdefault("LC_ALL", "C")  # stable, parseable messages
    if "GIT_SSH_COMMAND" not in env and "GIT_SSH" not in env:
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
    return env


def _stderr_tail(text: str, lines: int = 5) -> str:
    tail = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(tail) or "(no output)"


def run_git(
    url: str, args: Sequence[str], *, cwd: str | None = None, timeout: float = DEFAULT_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run ``git <args>``; a timeout or a missing git binary becomes a `GitRemoteError`."""
    if url.startswith("-"):
        raise GitRemoteError(url, "a repository URL cannot start with '-'")
    # A new session lets a timeout kill git *and* its helpers (ssh, git-remote-https); killing
    # only git would leave them holding our pipes open.
    try:
        process = subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            env=git_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except FileNotFoundError as error:
        raise GitRemoteError(url, f"cannot run git: {error}") from error
    with process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as error:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise GitTimeoutError(url, f"no answer within {timeout:g}s (git {args[0]})") from error
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def parse_ls_remote(output: str) -> dict[str, str]:
    """``<sha>\\t<ref>`` lines -> {ref: commit sha}; ``<tag>^{}`` lines replace the tag object's sha."""
    refs: dict[str, str] = {}
    peeled: dict[str, str] = {}
    for line in output.splitlines():
        sha, _, ref = line.partition("\t")
        if not ref:
            continue
        if ref.endswith("^{}"):
            peeled[ref[:-3]] = sha
        else:
            refs[ref] = sha
    refs.update({ref: sha for ref, sha in peeled.items() if ref in refs})
    return refs


def absolute_url(url: str) -> str:
    """``url`` with a relative local path made absolute (git resolves it against its cwd).

    URLs with ``scheme://`` and scp-style ``host:path`` (a colon before any slash) are unchanged.
    """
    if "://" in url:
        return url
    head, colon, _ = url.partition(":")
    if colon and "/" not in head:
        return url
    return os.path.abspath(url)


def list_refs(url: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, str]:
    """Every ref of the repository at ``url`` (ref name -> commit sha), in one ``git ls-remote``."""
    result = run_git(url, ["ls-remote", "--", absolute_url(url)], timeout=timeout)
    if result.returncode != 0:
        raise GitRemoteError(url, f"cannot list refs: {_stderr_tail(result.stderr)}")
    return parse_ls_remote(result.stdout)


def candidate_refs(name: str) -> list[str]:
    """Full ref names ``name`` may mean, in git's order (``main`` -> refs/heads/main, ...)."""
    if name == "HEAD" or name.startswith("refs/"):
        return [name]
    return [f"refs/{name}", f"refs/tags/{name}", f"refs/heads/{name}", f"refs/remotes/{name}"]


def resolve_from_refs(commit: str, refs: Mapping[str, str]) -> str | None:
    """Resolve ``commit`` using only the advertised refs (pure); None when they cannot tell.

    A ref name wins; then a hex prefix that matches exactly one advertised sha. Ambiguous
    prefixes raise ValueError.
    """
    for ref in candidate_refs(commit):
        if ref in refs:
            return refs[ref]
    lowered = commit.lower()
    if _FULL_SHA.match(lowered) or not _SHORT_SHA.match(lowered):
        return None
    matches = {sha for sha in refs.values() if sha.startswith(lowered)}
    if len(matches) > 1:
        raise ValueError(f"short sha {commit} is ambiguous: {', '.join(sorted(matches))}")
    return matches.pop() if matches else None


class RemoteRepo:
    """A remote repository plus, on demand, a scratch bare repository to fetch into and push from.

    Use as a context manager; the scratch directory is removed on exit.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self._sleep = sleep
        self._scratch: str | None = None
        self._refs: dict[str, str] | None = None

    def __enter__(self) -> RemoteRepo:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def refs(self, *, refresh: bool = False) -> dict[str, str]:
        """`list_refs`, cached for the life of this object unless ``refresh``."""
        if self._refs is None or refresh:
            self._refs = list_refs(self.url, timeout=self.timeout)
        return self._refs

    def _git(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return run_git(self.url, args, cwd=self._scratch_dir(), timeout=self.timeout)

    def _scratch_dir(self) -> str:
        if self._scratch is None:
            self._scratch = tempfile.mkdtemp(prefix="paasta_lite_git_")
            setup = [
                ["init", "--quiet", "--bare", self._scratch],
                ["-C", self._scratch, "remote", "add", "origin", absolute_url(self.url)],
                ["-C", self._scratch, "config", "remote.origin.promisor", "true"],
                ["-C", self._scratch, "config", "extensions.partialClone", "origin"],
                ["-C", self._scratch, "config", "push.negotiate", "true"],
            ]
            for args in setup:
                result = run_git(self.url, args, timeout=self.timeout)
                if result.returncode != 0:
                    raise GitRemoteError(self.url, f"cannot prepare a scratch repository: {result.stderr}")
        return self._scratch

    def fetch_commit(self, sha: str) -> None:
        """Fetch the one commit object ``sha``; `CommitNotFoundError` when the remote lacks it."""
        result = self._git(["fetch", "--quiet", "--no-tags", "--depth=1", "--filter=tree:0", "origin", sha])
        if result.returncode == 0:
            return
        stderr = result.stderr
        if "not our ref" in stderr or "couldn't find remote ref" in stderr or "no such remote ref" in stderr:
            raise CommitNotFoundError(
                self.url, f"commit {sha} does not exist there (was it pushed?): {_stderr_tail(stderr)}"
            )
        raise GitRemoteError(self.url, f"cannot fetch commit {sha}: {_stderr_tail(stderr)}")

    def resolve_commit(self, commit: str) -> str:
        """A full 40-hex sha for ``commit`` (full or short sha, branch, tag), checked to exist."""
        commit = commit.strip()
        try:
            sha = resolve_from_refs(commit, self.refs())
        except ValueError as error:
            raise CommitNotFoundError(self.url, str(error)) from error
        if sha is not None:
            return sha
        if _FULL_SHA.match(commit.lower()):
            self.fetch_commit(commit.lower())
            return commit.lower()
        if _SHORT_SHA.match(commit.lower()):
            return self._resolve_in_history(commit.lower())
        raise CommitNotFoundError(self.url, f"{commit!r} is neither a ref nor a sha there")

    def _resolve_in_history(self, prefix: str) -> str:
        """A short sha that is no ref tip: fetch the branch histories (commits only) and ask git."""
        result = self._git(
            ["fetch", "--quiet", "--no-tags", "--filter=tree:0", "origin", "+refs/heads/*:refs/h/*"]
        )
        if result.returncode != 0:
            raise GitRemoteError(
                self.url, f"cannot fetch history to resolve {prefix}: {_stderr_tail(result.stderr)}"
            )
        found = self._git(["rev-parse", "--verify", "--quiet", f"{prefix}^{{commit}}"])
        sha = found.stdout.strip()
        if found.returncode != 0 or not _FULL_SHA.match(sha):
            detail = _stderr_tail(found.stderr) if found.stderr.strip() else "no such commit on any branch"
            raise CommitNotFoundError(self.url, f"cannot resolve {prefix}: {detail}")
        return sha

    def push_tag(
        self, sha: str, tag: str, *, attempts: int = DEFAULT_PUSH_ATTEMPTS, retry_delay: float = 2.0
    ) -> None:
        """Create ``refs/tags/<tag>`` on ``sha`` in the remote; retry a rejected push.

        A tag that already exists on the same sha counts as done; on another sha it is an error
        at once (tags are never moved).
        """
        if not _FULL_SHA.match(sha):
            raise ValueError(f"push_tag needs a full sha, not {sha!r}")
        self.fetch_commit(sha)
        ref = f"refs/tags/{tag}"
        last_error = ""
        for attempt in range(1, attempts + 1):
            result = self._git(["push", "--quiet", "--porcelain", "origin", f"{sha}:{ref}"])
            if result.returncode == 0:
                return
            last_error = _stderr_tail(result.stdout + "\n" + result.stderr)
            existing = self.refs(refresh=True).get(ref)
            if existing == sha:
                return
            if existing is not None:
                raise PushRejectedError(self.url, f"tag {tag} already exists on {existing}, not {sha}")
            if attempt < attempts:
                self._sleep(retry_delay * attempt)
        raise PushRejectedError(
            self.url,
            f"pushing tag {tag} failed {attempts} times (have you pushed commit {sha}?): {last_error}",
        )
