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
    │   └── HeadMovedError         HEAD left the research branch or its expected commit
    ├── LockedError            another autoresearch process holds the repo
    ├── EditError              a proposed edit was refused or could not be applied
    ├── ProposerError          the proposer could not produce a plan or an edit
    ├── ProviderError          a model provider call failed (status and body attached)
    │   ├── ProviderConnectionError   no HTTP response (connection refused, timeout)
    │   ├── AuthenticationError       401/403: the key is missing, wrong or lacks access
    │   ├── BadRequestError           400/404/422: the request was rejected as malformed
    │   ├── RateLimitError            429 after the retries ran out
    │   └── ServerError               5xx after the retries ran out
    └── TaskError              a task-manager operation failed (unknown id, bad state, store)

Foreign exceptions (pygit2, OSError, pydantic) are translated where they occur with
``raise ... from exc`` so the original stays on ``__cause__``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from autoresearch.results import Usage

__all__ = [
    "AuthenticationError",
    "AutoResearchError",
    "BadRequestError",
    "ConfigError",
    "EditError",
    "GitError",
    "HeadMovedError",
    "LockedError",
    "NotInitializedError",
    "ProposerError",
    "ProviderConnectionError",
    "ProviderError",
    "RateLimitError",
    "ServerError",
    "TaskError",
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


class HeadMovedError(GitError):
    """HEAD is not where the engine left it, so the engine refuses to commit or restore.

    ``kind`` is ``"branch"`` when the checkout left the research branch (someone ran
    ``git checkout main``) and ``"commit"`` when the research branch holds a commit the engine
    did not make. ``head`` is the commit HEAD is at and ``branch`` the branch it is on (``None``
    when detached).
    """

    def __init__(
        self, message: str, *, kind: Literal["branch", "commit"], head: str, branch: str | None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.head = head
        self.branch = branch


class LockedError(AutoResearchError):
    """Another autoresearch process is working on the same repository."""

    def __init__(self, message: str, *, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class EditError(AutoResearchError):
    """A proposed edit was refused (path policy) or could not be applied (no unique match)."""


class ProposerError(AutoResearchError):
    """The proposer failed to produce a plan or a change (for example, unparseable output).

    ``usage`` is what the failed attempt cost (a model call whose reply was unusable), so the
    engine can still count it.
    """

    def __init__(self, message: str, *, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.usage = usage


class ProviderError(AutoResearchError):
    """A call to a model provider failed.

    ``status`` is the HTTP status (``None`` when no response arrived), ``body`` the response
    text (cut to a few KB, secrets redacted) and ``provider`` the provider's name.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status: int | None = None,
        body: str | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.body = body


class ProviderConnectionError(ProviderError):
    """The provider could not be reached (connection refused, DNS, timeout)."""


class AuthenticationError(ProviderError):
    """The provider refused the credentials (401 or 403)."""


class BadRequestError(ProviderError):
    """The provider rejected the request (400, 404, 422): a wrong model name, say."""


class RateLimitError(ProviderError):
    """The provider kept answering 429 after every retry."""


class ServerError(ProviderError):
    """The provider kept failing with 5xx after every retry."""


class TaskError(AutoResearchError):
    """A task-manager operation failed: unknown task, invalid transition, unusable store."""
