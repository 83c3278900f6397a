"""The exception tree.

Everything autoresearch raises on purpose derives from :class:`AutoResearchError`, so an
application can catch one type. A failed *experiment* is never an exception: it is a status
(``crash``, ``timeout``, ``invalid``) on the cycle's result.

::

    AutoResearchError
    ├── ConfigError            bad configuration or environment; names the field
    │   └── NotInitializedError    the repo has no .autoresearch/config.json
    ├── WorkspaceError         a file under .autoresearch/ is unreadable or malformed
    ├── GitError               a git operation failed (translated from pygit2)
    ├── LockedError            another autoresearch process holds the repo
    ├── EditError              a proposed edit was refused or could not be applied
    └── ProposerError          the proposer could not produce a plan or an edit

Foreign exceptions (pygit2, OSError, pydantic) are translated where they occur with
``raise ... from exc`` so the original stays on ``__cause__``.
"""

from __future__ import annotations

__all__ = [
    "AutoResearchError",
    "ConfigError",
    "EditError",
    "GitError",
    "LockedError",
    "NotInitializedError",
    "ProposerError",
    "WorkspaceError",
]


class AutoResearchError(Exception):
    """Base class of every error autoresearch raises deliberately."""


class ConfigError(AutoResearchError, ValueError):
    """The configuration (or the repository it points at) cannot be used.

    ``field`` names the offending setting in its snake_case spelling (``"mutable_paths"``) so
    programs can react to it; the message says what is wrong and how to fix it.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotInitializedError(ConfigError):
    """The repository has not been set up with ``autoresearch init`` (no config.json)."""


class WorkspaceError(AutoResearchError):
    """A file under ``.autoresearch/`` is unreadable or malformed; the message says which."""


class GitError(AutoResearchError):
    """A git operation failed; the pygit2 error is kept on ``__cause__``."""


class LockedError(AutoResearchError):
    """Another autoresearch process is working on the same repository."""

    def __init__(self, message: str, *, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class EditError(AutoResearchError):
    """A proposed edit was refused (path policy) or could not be applied (no unique match)."""


class ProposerError(AutoResearchError):
    """The proposer failed to produce a plan or a change (for example, unparseable output)."""
