"""Reading the command line's arguments: REPO, KEY=VALUE and comma lists, seconds.

REPO becomes the root of its git repository; seconds become milliseconds. A value the
commands check themselves is a usage error (one line, exit 2) before anything is written,
like the values typer checks.
"""

from __future__ import annotations

import enum
import math
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from autoresearch.cli.errors import _usage_error

__all__ = ["FormatOpt", "JsonOpt", "OutputFormat", "RepoArg"]

RepoArg = Annotated[
    Path | None,
    typer.Argument(
        metavar="REPO",
        help="The git repository (or a folder inside it). "
        "[default: the repository of the current directory]",
        show_default=False,
    ),
]


def _find_repo(repo: Path | None) -> Path:
    """The root of the git repository that holds REPO (default: the current directory).

    As git does, a subdirectory means its repository. A REPO outside any repository is
    returned as given, so that the command says what is wrong with it; no REPO outside one
    is a usage error.
    """
    import pygit2  # here, not at the top: `autoresearch --help` stays quick

    try:
        start = Path.cwd() if repo is None else repo.expanduser()
    except FileNotFoundError:
        _usage_error("the current directory no longer exists; pass REPO")
    try:
        found = pygit2.discover_repository(
            str(start), False, os.environ.get("GIT_CEILING_DIRECTORIES", "")
        )
        workdir = pygit2.Repository(found).workdir if found is not None else None
    except (pygit2.GitError, OSError, ValueError):
        workdir = None  # unreadable: the command reports on REPO itself
    if workdir:
        return Path(workdir).resolve()
    if repo is None:
        _usage_error("not inside a git repository; pass REPO (the repository to research)")
    return start.resolve()


def _key_values(items: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--provider-option")
        pairs[key.strip()] = value.strip()
    return pairs


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def _timeout_ms(seconds: float, option: str = "--timeout") -> int:
    """``option`` in milliseconds; a positive value under 1 ms counts as 1 ms."""
    if not math.isfinite(seconds) or seconds <= 0:
        _usage_error(f"{option} must be a positive number of seconds, got {seconds:g}")
    return max(1, round(seconds * 1000))


def _kill_grace_ms(seconds: float) -> int:
    """``--kill-grace`` in milliseconds (0 allowed: SIGKILL right after SIGTERM)."""
    if not math.isfinite(seconds) or seconds < 0:
        _usage_error(f"--kill-grace must be a number of seconds >= 0, got {seconds:g}")
    return round(seconds * 1000)


JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


class OutputFormat(enum.StrEnum):
    """How a command prints: ``text`` for people, ``json`` for programs."""

    TEXT = "text"
    JSON = "json"


FormatOpt = Annotated[
    OutputFormat | None,
    typer.Option(
        "--format",
        help="text or json; --format json is --json (NeuroLink's spelling).",
        show_default=False,
    ),
]


def _wants_json(as_json: bool, output_format: OutputFormat | None) -> bool:
    """Whether ``--json`` or ``--format json`` was given (a usage error if they disagree)."""
    if as_json and output_format is OutputFormat.TEXT:
        _usage_error("--json and --format text disagree; give one of them")
    return as_json or output_format is OutputFormat.JSON


def _gpu_list(values: list[str] | None) -> list[int] | None:
    """``--gpus 0,1,2,3`` (comma-separated, repeatable) as a list of indices."""
    if not values:
        return None
    gpus: list[int] = []
    for part in _split(values):
        if not part.isdigit():
            raise typer.BadParameter(
                f"{part!r} is not a GPU index (0, 1, 2 …)", param_hint="--gpus"
            )
        gpus.append(int(part))
    return gpus


SlotsOpt = Annotated[
    int | None,
    typer.Option(min=1, max=64, help="Candidates at once, each in its own git worktree."),
]
GpusOpt = Annotated[
    list[str] | None,
    typer.Option(help="GPU indices to share among the slots, e.g. 0,1,2,3 (CUDA_VISIBLE_DEVICES)."),
]
GpusPerSlotOpt = Annotated[
    int | None, typer.Option(min=1, max=64, help="GPUs each slot's run gets. [default: 1]")
]


def _slot_options(
    slots: int | None, gpus: list[str] | None, gpus_per_slot: int | None
) -> dict[str, Any]:
    """The slot settings given on the command line (only those given)."""
    given = {"slots": slots, "gpus": _gpu_list(gpus), "gpus_per_slot": gpus_per_slot}
    return {key: value for key, value in given.items() if value is not None}


class Backend(enum.StrEnum):
    """Where experiments run (``--backend``)."""

    LOCAL = "local"
    RAY = "ray"


BackendOpt = Annotated[
    Backend | None,
    typer.Option(
        help="Where experiments run: local, or ray (a Ray cluster; pip install "
        "'autoresearch[ray]'). [default: local]",
        show_default=False,
    ),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        help="The Ray cluster: auto, HOST:PORT or ray://HOST:10001 (implies --backend ray).",
        show_default=False,
    ),
]


def _backend_options(
    backend: Backend | None, ray_address: str | None, saved_ray: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The backend settings given on the command line (only those given).

    ``--ray-address`` changes only the address among the saved Ray settings ``saved_ray``.
    """
    options: dict[str, Any] = {}
    if ray_address is not None:
        if backend is Backend.LOCAL:
            _usage_error("--ray-address is for --backend ray; leave out --backend local")
        backend = Backend.RAY
        options["ray"] = {**(saved_ray or {}), "address": ray_address}
    if backend is not None:
        options["backend"] = backend.value
    return options
