"""Moving sessions in and out: `tether export` and `tether import` (seed-format JSONL)."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tether.cli import render
from tether.cli.options import StoreOption
from tether.front.manager import SessionManager

commands = typer.Typer()

STDIO = "-"


@commands.command("export")
def export(
    destination: Annotated[
        str, typer.Argument(metavar="FILE", help="JSONL file to write, or - for stdout.", show_default=False)
    ],
    user: Annotated[str | None, typer.Option("--user", help="Only this user's sessions.")] = None,
    decrypt: Annotated[
        bool,
        typer.Option("--decrypt", help="Write encrypted payloads in clear (needs TETHER_ENCRYPTION_KEY)."),
    ] = False,
    store: StoreOption = None,
) -> None:
    """Write sessions and their checkpoints as seed-format JSONL, one session per line."""
    with SessionManager(store) as manager:
        if destination == STDIO:
            count = manager.export(sys.stdout, user_id=user, decrypt=decrypt)
            render.err.print(f"exported {render.how_many(count)}")
            return
        count = _export_file(manager, Path(destination), user, decrypt)
    render.out.print(f"exported {render.how_many(count)} to {destination}")


def _export_file(manager: SessionManager, path: Path, user: str | None, decrypt: bool) -> int:
    """Write next to the target and rename, so a failed export never leaves half a file behind."""
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a file to write", str(path))
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "w", encoding="utf-8") as fh:
            count = manager.export(fh, user_id=user, decrypt=decrypt)
        os.replace(partial, path)
    except OSError as exc:  # blame the path the user gave, not the temporary one beside it
        partial.unlink(missing_ok=True)
        raise type(exc)(exc.errno, exc.strerror, str(path)) from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return count


@commands.command("import")
def import_sessions(
    source: Annotated[
        str, typer.Argument(metavar="FILE", help="JSONL file to read, or - for stdin.", show_default=False)
    ],
    skip_existing: Annotated[
        bool, typer.Option("--skip-existing", help="Skip sessions whose id exists instead of stopping.")
    ] = False,
    store: StoreOption = None,
) -> None:
    """Create the sessions of a seed-format JSONL file (as `tether export` writes it)."""
    total = None if source == STDIO else _count_lines(Path(source))
    with SessionManager(store) as manager, _progress_bar(total) as advance:
        imported = manager.import_sessions(
            sys.stdin if source == STDIO else Path(source),
            on_conflict="skip" if skip_existing else "error",
            progress=advance,
        )
    skipped = advance.count - imported
    summary = f"imported {render.how_many(imported)}" + (f", skipped {skipped} existing" if skipped else "")
    (render.err if source == STDIO else render.out).print(summary)


class _Counter:
    """The progress callback: counts sessions done and moves the bar."""

    def __init__(self, step: Callable[[int], None]) -> None:
        self.count = 0
        self._step = step

    def __call__(self, n: int) -> None:
        self.count += n
        self._step(n)


@contextlib.contextmanager
def _progress_bar(total: int | None) -> Iterator[_Counter]:
    """A bar on stderr when it is a terminal; silent in pipes and logs."""
    progress = Progress(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=render.err,
        disable=not render.err.is_terminal,
    )
    with progress:
        task = progress.add_task("import", total=total)
        yield _Counter(lambda n: progress.advance(task, n))


def _count_lines(path: Path) -> int:
    """Sessions in the file (one per non-blank line), for the bar's total."""
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())
