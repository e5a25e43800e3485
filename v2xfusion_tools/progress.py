"""Progress bars for long work: a rich bar whose `advance` callback library code can call."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextmanager
def progress_bar(description: str, total: int, console: Console | None = None) -> Iterator[Callable[..., None]]:
    """Show a bar with count, elapsed time and ETA; yield `advance(n=1, info=None)` for the worker to
    call (info: a short text shown after the ETA, e.g. the current loss terms)."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
    with Progress(*columns, console=console or Console(stderr=True), transient=False) as progress:
        task = progress.add_task(description, total=total, info="")

        def advance(n: int = 1, info: str | None = None) -> None:
            if info is None:
                progress.advance(task, n)
            else:
                progress.update(task, advance=n, info=info)

        yield advance


ProgressFactory = Callable[[str, int], AbstractContextManager]
"""What long-running library functions accept: `progress_bar` itself, or None for silence."""


def stage(factory: ProgressFactory | None, description: str, total: int) -> AbstractContextManager:
    """`factory(description, total)`, or a context yielding a no-op `advance` when factory is None."""
    return factory(description, total) if factory else nullcontext(lambda n=1: None)
