"""Discovery: from the mutable files and the run command to a reviewable search space.

:func:`discover_space` scans every mutable file (Python in all its config styles, YAML, JSON,
TOML), gives each value a domain, leaves out what is not a hyperparameter (saying why), leaves
out defaults the run command overrides (a ``--lr`` flag, a config file applied over module
globals by ``exec``), then applies the user's edits (:class:`ParamSpec`).
"""

from __future__ import annotations

import ast
import shlex
from collections.abc import Mapping, Sequence

from autoresearch.params.cfgscan import CONFIG_SUFFIXES, scan_config
from autoresearch.params.domains import infer_domain, measurement_reason, words
from autoresearch.params.found import Found
from autoresearch.params.model import Param, ParamSpec, SearchSpace, Value
from autoresearch.params.pyscan import scan_python

__all__ = ["apply_specs", "discover_space", "frozen_specs", "unknown_specs"]


def discover_space(
    mutable_files: Mapping[str, str],
    run_command: str = "",
    specs: Sequence[ParamSpec] = (),
    readable_files: Mapping[str, str] | None = None,
    anchors: Mapping[str, Value] | None = None,
) -> SearchSpace:
    """The search space of ``mutable_files`` (path -> text) for ``run_command``.

    ``readable_files`` are other files of the repository the run command may load (a config
    file passed to the script); they are read, never tuned. ``anchors`` are the values the
    default ranges are built around (the baseline's), so ranges do not drift as the best
    configuration moves; without one a parameter's range is built around its current value.
    """
    flags, configs = _command_overrides(run_command)
    others = {**(readable_files or {}), **mutable_files}
    found_by_path: dict[str, list[Found]] = {}
    notes: list[str] = []
    for path in sorted(mutable_files):
        text = mutable_files[path]
        if path.endswith(".py"):
            found, exec_line = scan_python(text)
            if exec_line is not None:
                _exclude_exec_overrides(
                    path, found, exec_line=exec_line, configs=configs, files=others, notes=notes
                )
        elif path.lower().endswith(CONFIG_SUFFIXES):
            found = scan_config(path, text)
        else:
            continue
        for item in found:
            flag = flags.get(_normal(item.name))
            if flag is not None and item.excluded is None:
                item.excluded = f"the run command passes {flag}, which overrides this value"
                notes.append(
                    f"{path}:{item.line}: {item.key} is set by {flag} in the run command; left out"
                )
        found_by_path[path] = found
    params = _params(found_by_path, anchors or {})
    return apply_specs(SearchSpace(params=params, notes=notes), specs)


def apply_specs(space: SearchSpace, specs: Sequence[ParamSpec]) -> SearchSpace:
    """``space`` with the user's edits applied; a spec that names nothing adds a note."""
    params = list(space.params)
    notes = list(space.notes)
    for spec in specs:
        matches = [i for i, p in enumerate(params) if spec.name in (p.key, f"{p.path}:{p.key}")]
        if not matches and not spec.discovered:
            notes.append(f"--param {spec.name}: no parameter has that name")
        for index in matches:
            params[index] = _edited(params[index], spec)
    return SearchSpace(params=params, notes=notes)


def unknown_specs(space: SearchSpace, specs: Sequence[ParamSpec]) -> list[str]:
    """The names of your edits in ``specs`` that match no discovered parameter."""
    names = {p.key for p in space.params} | {f"{p.path}:{p.key}" for p in space.params}
    return [s.name for s in specs if s.name not in names and not s.discovered]


def frozen_specs(space: SearchSpace, specs: Sequence[ParamSpec]) -> list[ParamSpec]:
    """``specs`` (your edits) plus one discovered entry for every other tuned parameter.

    What ``init`` stores in config.json: the space as it was found, with each range and the
    reason for it, so that it can be read and edited there and does not drift with the code.
    """
    mine = [s for s in specs if not s.discovered]
    named = {s.name for s in mine}
    frozen = list(mine)
    for param in space.tuned:
        if param.key in named or f"{param.path}:{param.key}" in named:
            continue
        frozen.append(
            ParamSpec(
                name=param.key,
                low=param.low,
                high=param.high,
                scale=None if param.kind == "choice" else param.scale,
                integer=True if param.kind == "int" else None,
                choices=param.choices if param.kind == "choice" else None,
                reason=param.reason,
                discovered=True,
            )
        )
    return frozen


def _edited(param: Param, spec: ParamSpec) -> Param:
    if spec.exclude:
        return param.model_copy(update={"excluded": "excluded by you (--exclude-param)"})
    update: dict[str, object] = {"excluded": None}
    if spec.choices is not None:
        choices = list(spec.choices)
        if param.value not in choices:
            choices.insert(0, param.value)
        update.update(
            kind="choice", choices=choices, reason=spec.reason or "the choices you listed"
        )
    elif spec.low is not None and spec.high is not None:
        update.update(low=spec.low, high=spec.high, reason=spec.reason or "the range you set")
        if param.kind == "choice":
            update["kind"] = "int" if spec.integer else "float"
    elif param.kind == "choice" and not param.choices:
        return param.model_copy(
            update={"excluded": f"{param.excluded or 'not a number'}; list choices to tune it"}
        )
    if spec.scale is not None:
        update["scale"] = spec.scale
    if spec.integer is not None and update.get("kind", param.kind) != "choice":
        update["kind"] = "int" if spec.integer else "float"
    if param.low is None and "low" not in update and update.get("kind", param.kind) != "choice":
        return param.model_copy(
            update={"excluded": f"{param.excluded}; give it a range to tune it (NAME=LOW:HIGH)"}
        )
    return param.model_copy(update=update)


def _params(found_by_path: Mapping[str, list[Found]], anchors: Mapping[str, Value]) -> list[Param]:
    counts: dict[str, int] = {}
    for items in found_by_path.values():
        for item in items:
            counts[item.key] = counts.get(item.key, 0) + 1
    params: list[Param] = []
    for path, items in found_by_path.items():
        for item in items:
            key = item.key if counts[item.key] == 1 else f"{path}:{item.key}"
            anchor = anchors.get(key, item.value)
            if type(anchor) is not type(item.value):
                anchor = item.value
            domain = infer_domain(item.name, anchor, item.integer)
            excluded = item.excluded or measurement_reason(item.name) or domain.excluded
            kind, choices, reason = domain.kind, None, domain.reason
            if item.choices:
                kind, choices, reason = "choice", item.choices, "the script's own choices"
                excluded = item.excluded or measurement_reason(item.name)
            params.append(
                Param(
                    key=key,
                    path=path,
                    line=item.line,
                    style=item.style,
                    kind=kind,
                    value=item.value,
                    low=domain.low,
                    high=domain.high,
                    scale=domain.scale,
                    choices=choices,
                    reason=reason,
                    excluded=excluded,
                    start=item.start,
                    end=item.end,
                    text=item.text,
                )
            )
    return params


def _normal(name: str) -> str:
    return "_".join(words(name)) if name else name


def _command_overrides(command: str) -> tuple[dict[str, str], list[str]]:
    """The ``--flags`` of the run command and the config files it passes after the script.

    Flags map their normalised name to the flag as written.
    """
    try:
        tokens = shlex.split(command)
    except ValueError:
        tokens = command.split()
    flags: dict[str, str] = {}
    configs: list[str] = []
    scripts = 0
    for token in tokens:
        if token.startswith("--") and len(token) > 2:
            name = token[2:].split("=", 1)[0]
            flags[_normal(name)] = token
        elif token.endswith(".py"):
            scripts += 1
            if scripts > 1:
                configs.append(token)
        elif token.lower().endswith(CONFIG_SUFFIXES):
            configs.append(token)
    return flags, configs


def _exclude_exec_overrides(
    path: str,
    found: list[Found],
    *,
    exec_line: int,
    configs: list[str],
    files: Mapping[str, str],
    notes: list[str],
) -> None:
    """Leave out module globals that a config file named in the run command replaces.

    A script that ``exec``s a configurator (nanoGPT's style) applies the config files passed on
    the command line over its globals, so those defaults never reach the run.
    """
    for config in configs:
        text = files.get(config.removeprefix("./"))
        if text is None:
            continue
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue
        assigned = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for item in found:
            if item.line < exec_line and item.key in assigned and item.excluded is None:
                item.excluded = (
                    f"set by {config}, which the run command passes and line {exec_line} "
                    "applies over this default"
                )
                notes.append(f"{path}:{item.line}: {item.key} is overridden by {config}; left out")
