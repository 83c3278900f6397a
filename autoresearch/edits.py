"""Edits to mutable files: the data, the path policy, applying them and checking syntax."""

from __future__ import annotations

from pydantic import model_validator

from autoresearch._model import CamelModel
from autoresearch.results import Usage

__all__ = ["ChangeSet", "Edit"]


class Edit(CamelModel):
    """One change to one file.

    Either ``search``/``replace`` (``search`` must match the file exactly once) or ``content``
    (the whole new file). Paths are relative to the repository root.
    """

    path: str
    search: str | None = None
    replace: str | None = None
    content: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Edit:
        if self.content is None and (self.search is None or self.replace is None):
            raise ValueError("an edit needs either 'content' or both 'search' and 'replace'")
        if self.content is not None and self.search is not None:
            raise ValueError("an edit has either 'content' or 'search'/'replace', not both")
        return self


class ChangeSet(CamelModel):
    """The edits a proposer wants applied for one plan, with the usage it cost."""

    edits: list[Edit]
    usage: Usage | None = None
