"""The console the command line prints to, and its shared pieces: a clear error, a
progress bar, a time."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any, NoReturn

import typer
from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from forewarn.cleantext import for_terminal
from forewarn.quiet import zone_info


class SafeConsole(Console):
    """A console that never lets a string's own control characters reach the terminal:
    a customer's text carrying ESC[2J is shown as \\x1b[2J, not obeyed. Every string
    printed, and every table cell, passes through render_str; rich's own styling is
    added after it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if "width" not in kwargs:
            # rich fixes the width from COLUMNS when made; read it at each print instead
            # (the console is made at import, long before a command, or a test, sets it).
            self._width = None

    def render_str(self, text: str, **kwargs: Any) -> Text:
        """The string as rich renders it, its control characters made visible."""
        return super().render_str(for_terminal(text), **kwargs)

    @property
    def piped(self) -> bool:
        """Printing into a file or another program (no terminal, and no COLUMNS given):
        lines are then not wrapped at 80 columns, inside phone numbers and paths. Asked
        at each print, not when the console is made."""
        return self._width is None and not self.is_terminal and "COLUMNS" not in os.environ

    @property
    def size(self) -> ConsoleDimensions:
        """The console's size; piped, as wide as any table forewarn prints needs."""
        measured = super().size
        return ConsoleDimensions(PIPED_WIDTH, measured.height) if self.piped else measured

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size

    def print(self, *objects: Any, soft_wrap: bool | None = None, **kwargs: Any) -> None:
        """Print as rich does; piped, without wrapping lines."""
        if soft_wrap is None and self.piped:
            soft_wrap = True
        super().print(*objects, soft_wrap=soft_wrap, **kwargs)


# Piped output's width for tables: wide enough for any row forewarn prints.
PIPED_WIDTH = 240
console = SafeConsole()


def fail(message: str) -> NoReturn:
    """Print a one-line error and leave with status 2 (nothing was changed)."""
    console.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(2)


def fail_lines(messages: list[str]) -> NoReturn:
    """Print one error line per message and leave with status 2 (nothing was changed)."""
    for message in messages:
        console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(2)


def progress() -> Progress:
    """A progress bar for long imports and dispatches (quiet when not on a terminal)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def shown(moment: datetime | None, zone: str) -> str:
    """A time as ops read it, in the operator's zone (FOREWARN_TIME_ZONE), the zone they
    type times in too: '2026-11-24 14:00 GMT', or '-'."""
    if moment is None:
        return "-"
    local = moment.astimezone(zone_info(zone))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or zone}"
