"""Keeping the user's work: every restore the worker makes, and the finishing of a cycle.

The worker never writes the working tree itself; it asks the :class:`Keeper`, which holds the
rules that make the engine safe to leave running on someone's repository:

- a restore replaces only content git can give back, and saves anything else first as
  ``refs/autoresearch/<tag>/saved/<time>`` (saying so in an ``autoresearch:notice``);
- HEAD must be on the research branch at the commit the engine left there: a checkout of
  another branch is never written to, and a commit made by hand is never reset away;
- a cycle an earlier process left undecided is finished once, as measured when it was.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio

from autoresearch.config import ResearchConfig
from autoresearch.edits import PathPolicy
from autoresearch.emitter import EventEmitter
from autoresearch.errors import HeadMovedError
from autoresearch.events import CommitRevertedEvent, NoticeEvent, NoticeKind
from autoresearch.gitrepo import Expect, GitRepo
from autoresearch.ledger import Ledger
from autoresearch.results import RunRecord, Status
from autoresearch.runner import kill_orphaned_run
from autoresearch.workspace import ResearchState, Workspace

__all__ = ["Keeper", "Settled"]

logger = logging.getLogger("autoresearch")


@dataclass
class Settled:
    """How bringing the tree to its commit at the end of a cycle went."""

    problem: str | None = None
    """Said in the cycle's record when not None."""
    stop: BaseException | None = None
    """Raised once the cycle is recorded: the run cannot go on."""
    moved: bool = False
    """HEAD was not where the engine left it; the measurement cannot be trusted."""
    pending: bool = False
    """The restore failed; state.json keeps the cycle open for the next start."""


class Keeper:
    """Restores and recovery for one repository's research (see the module docstring)."""

    def __init__(self, git: GitRepo, config: ResearchConfig, emitter: EventEmitter) -> None:
        self.git = git
        self.config = config
        self.emitter = emitter

    async def notice(
        self, kind: NoticeKind, message: str, *, cycle: int | None = None, ref: str | None = None
    ) -> None:
        """Say ``message`` in one line: an ``autoresearch:notice`` event and a log record."""
        logger.info("%s", message)
        await self.emitter.emit(NoticeEvent(kind=kind, message=message, cycle=cycle, ref=ref))

    def commit_title(self, cycle: int) -> str:
        """How the message of the candidate commit of ``cycle`` begins."""
        return f"autoresearch {self.config.chosen_tag} #{cycle}: "

    async def restore(
        self,
        cycle: int | None,
        target: str,
        *,
        expect: str,
        ours: Sequence[str],
        written: Mapping[str, str] | None,
    ) -> None:
        """Restore the mutable paths to ``target``; content the engine did not write is saved.

        HEAD must be on the research branch at ``expect`` (:class:`HeadMovedError` if not).
        ``ours`` are commits the engine made and ``written`` what it wrote without committing.
        """
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        saved = await self.git.restore(
            target,
            self.config.mutable_paths,
            exclude=self.config.immutable_paths,
            expect=Expect(self.config.branch, expect),
            ours=ours,
            written=written,
            save_as=f"refs/autoresearch/{self.config.chosen_tag}/saved/{stamp}",
        )
        if saved is not None:
            files = ", ".join(saved.paths[:5]) + (" …" if len(saved.paths) > 5 else "")
            await self.notice(
                "saved",
                f"{files} held changes autoresearch did not make; saved as {saved.ref} "
                f"(see it with: git show {saved.ref}) before restoring {target[:7]}",
                cycle=cycle,
                ref=saved.ref,
            )

    async def settle(
        self,
        cycle: int,
        *,
        parent: str,
        candidate: str | None,
        written: Mapping[str, str] | None,
        target: str,
        reason: str,
        here: str | None = None,
    ) -> Settled:
        """Bring the tree to ``target`` at the end of a cycle, whatever is in the way.

        If the checkout left the research branch, nothing in it is touched: the branch alone
        goes back to ``parent`` and the run stops. If someone committed on the research
        branch, their commit stays (measured next as a new baseline) and only the engine's
        uncommitted edits are undone. If the restore fails, state.json keeps the cycle open so
        the next start finishes it, and the run stops. ``here`` is where HEAD is (by default
        the candidate, or the parent when nothing was committed; with slots, the best commit:
        the candidate was made in a slot's checkout).
        """
        here = here or candidate or parent
        ours = [x for x in (candidate, parent) if x is not None]
        try:
            try:
                await self.restore(cycle, target, expect=here, ours=ours, written=written)
            except HeadMovedError as exc:
                if exc.kind == "branch":
                    if candidate is not None and candidate != parent:
                        await self.git.move_branch(self.config.branch, parent, expected=candidate)
                    return Settled(problem=str(exc), stop=exc, moved=True)
                await self.restore(cycle, exc.head, expect=exc.head, ours=ours, written=written)
                return Settled(problem=f"{exc}; it is measured next as a new baseline", moved=True)
        except Exception as exc:
            logger.error("could not restore the tree after cycle %d", cycle, exc_info=True)
            return Settled(
                problem=f"restoring {target[:7]} failed ({exc}); the next start finishes it",
                stop=exc,
                pending=True,
            )
        if target == parent and candidate is not None and candidate != parent:
            await self.emitter.emit(
                CommitRevertedEvent(
                    cycle=cycle, commit_hash=candidate, restored_to=parent, reason=reason
                )
            )
        return Settled()

    async def changed_outside_targets(self) -> list[str]:
        """Tracked files outside the mutable paths that differ from HEAD."""
        policy = PathPolicy.from_config(self.config)
        dirty = await self.git.dirty_tracked_files()
        return [path for path in dirty if not policy.allows(path)]

    async def first_free_cycle(
        self, ledger: Ledger, workspace: Workspace, previous: ResearchState | None
    ) -> int:
        """One past the highest cycle number the ledger, the logs or the refs speak of.

        A new cycle never reuses a number, so it never overwrites a log or a candidate's ref,
        even after runs.jsonl was lost or the session was reset.
        """
        prefix = f"refs/autoresearch/{self.config.chosen_tag}/"
        numbers = [r.cycle for r in ledger.history]
        numbers += [
            int(n)
            for n in (name[len(prefix) :] for name in await self.git.refs_under(prefix))
            if n.isdigit()
        ]
        numbers.append(await anyio.to_thread.run_sync(workspace.highest_logged_cycle))
        if previous is not None and previous.current_cycle is not None:
            numbers.append(previous.current_cycle)  # recovery records that one
        if previous is not None:
            numbers += [running.cycle for running in previous.in_flight]
        return max(numbers, default=0) + 1

    async def recover(self, ledger: Ledger, previous: ResearchState) -> None:
        """Finish the cycle an earlier process left undecided, once.

        Whatever is left of its experiment is killed. A cycle whose outcome was measured is
        finished as measured (a keep stays kept); any other is a crash. The mutable files go
        back to the cycle's parent, and content in them that the interrupted cycle did not
        write (a hand edit made since) is saved first. A commit the engine did not make on the
        research branch is left where it is, to be measured as a new baseline.
        """
        state, git = ledger.state, self.git
        assert state.best_commit is not None
        number = previous.current_cycle
        if number is not None:
            killed = await kill_orphaned_run(
                self.config.repo_path,
                pgid=previous.experiment_pid,
                marker={"AUTORESEARCH_CYCLE": str(number), "AUTORESEARCH_TAG": previous.tag},
            )
            if killed:
                logger.warning("killed %d leftover process(es) of cycle %s", killed, number)
        candidate, measured = previous.candidate_commit, previous.measured
        parent = previous.parent_commit or state.best_commit
        status: Status = measured.status if measured is not None else "crash"
        keep = status == "keep" and candidate is not None
        description = f"interrupted in {previous.phase}"
        if measured is not None:
            description = f"{measured.reason or status} (finished after an interruption)"
        head = await git.head_commit()
        if candidate is None and number is not None and await self._made(head, number, parent):
            candidate = head  # killed between making the commit and writing state.json
        if number is not None and candidate is not None and candidate != parent:
            await git.set_ref(f"refs/autoresearch/{self.config.chosen_tag}/{number}", candidate)
        if head in (parent, candidate):
            await self.restore(
                number,
                candidate if keep and candidate is not None else parent,
                expect=head,
                ours=[c for c in (candidate, parent) if c is not None],
                written=previous.written,
            )
        else:  # the user committed since: never reset past that; measure it next
            description += (
                f"; {self.config.branch} then got {head[:7]}, a commit autoresearch did not "
                "make, which is measured next as a new baseline"
            )
        if keep and measured is not None and candidate is not None:
            state.best_commit, state.best_metric = candidate, measured.metric
            if state.baseline_metric is None:
                state.baseline_metric = measured.metric
        if number is not None and not ledger.has(number):
            await ledger.record(
                RunRecord(
                    cycle=number,
                    commit=candidate or parent,
                    parent_commit=parent,
                    status=status,
                    metric=measured.metric if measured is not None else None,
                    memory_gb=measured.memory_gb if measured is not None else None,
                    description=description,
                    started_at=previous.updated_at,
                    baseline=measured.baseline if measured is not None else False,
                )
            )
        ledger.close_cycle()

    async def recover_slots(self, ledger: Ledger, previous: ResearchState) -> None:
        """Record once each cycle that was running in a slot when an earlier process died.

        Their runs are killed (found by their cycle and tag); their checkouts are the engine's
        own and are reset when a slot takes its next candidate.
        """
        for running in previous.in_flight:
            killed = await kill_orphaned_run(
                self.config.repo_path,
                marker={
                    "AUTORESEARCH_CYCLE": str(running.cycle),
                    "AUTORESEARCH_TAG": previous.tag,
                },
            )
            if killed:
                logger.warning("killed %d leftover process(es) of cycle %s", killed, running.cycle)
            if ledger.has(running.cycle):
                continue
            await ledger.record(
                RunRecord(
                    cycle=running.cycle,
                    commit=running.candidate_commit or running.parent_commit,
                    parent_commit=running.parent_commit,
                    status="crash",
                    description=f"interrupted in {running.phase} (slot {running.slot})",
                    started_at=previous.updated_at,
                    slot=running.slot,
                )
            )
        ledger.state.in_flight = []
        ledger.close_cycle()

    async def _made(self, commit: str, cycle: int, parent: str) -> bool:
        """Whether ``commit`` is the candidate the engine made on ``parent`` for ``cycle``."""
        message = await self.git.commit_message(commit)
        return message.startswith(self.commit_title(cycle)) and (
            await self.git.parents(commit) == [parent]
        )
