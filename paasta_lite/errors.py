"""Error types shared by every layer.

Errors carry their meaning (user error vs. bug, retryable or not) and an exit code, and are
shown once, at the edge (the click commands and the entry points). Nothing below the edge calls
``sys.exit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class PaastaLiteError(Exception):
    """Base class for every error paasta_lite expects and explains to a user."""

    exit_code = 1


class UsageError(PaastaLiteError):
    """The command line itself is wrong (bad flag combination, unknown service...)."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one piece of configuration, located as precisely as we can.

    ``path`` is the file, ``instance`` the instance (or top-level key) inside it, ``field`` a
    dotted path inside the instance, ``message`` the rule broken in a service owner's words.
    """

    path: str
    message: str
    instance: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = self.path
        if self.instance is not None:
            where += f": instance '{self.instance}'"
        if self.field:
            where += f", field '{self.field}'"
        return f"{where}: {self.message}"


class ConfigError(PaastaLiteError):
    """Configuration that cannot be used, with every problem found (at least one)."""

    exit_code = 2

    def __init__(self, problems: Sequence[Problem]) -> None:
        if not problems:
            raise ValueError("ConfigError needs at least one problem")
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(
        cls, path: str, message: str, *, instance: str | None = None, field: str | None = None
    ) -> ConfigError:
        return cls([Problem(path=path, message=message, instance=instance, field=field)])


class FileSystemError(PaastaLiteError):
    """The file system refused a read, listing or write (permission, symlink loop, full disk...).

    One line naming the path, exit 1: the configuration may be fine, the machine is not. Config
    files that cannot be read while loading a service are `ConfigError` problems instead (so one
    unreadable service never stops the others); this is for what stops the whole command.
    """

    exit_code = 1

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class NotConfiguredError(PaastaLiteError):
    """The system config lacks something the command needs (e.g. no `cluster` key)."""

    exit_code = 2


class NotDeployedError(PaastaLiteError):
    """An instance whose deploy group has no entry in deployments.json yet.

    Reported per instance ("not deployed yet"); never fatal for the other instances.
    """
