"""Tables that fit where they are shown.

On a terminal a table fits its width: the columns people need most stay, the others give
way, least needed first (cut short with "…" down to a minimum, then dropped). Ids are never
cut: if the columns that must stay are wider than the terminal even so, the lines are
longer and the terminal wraps them. Anywhere else (a pipe, a file, ``--wide``) nothing
gives way: every column, every character, one row per line.
"""

from __future__ import annotations

import dataclasses
import functools
import io
from collections.abc import Callable, Sequence

from rich import box
from rich.console import Console, ConsoleOptions, JustifyMethod, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

# Tables are read down their columns; a light box keeps them greppable when piped.
_BOX = box.SIMPLE_HEAD
# Wider than any line durq prints: the width of "no limit".
_UNLIMITED = 1_000_000


@dataclasses.dataclass(eq=False)
class Column:
    """One column: its header and cells, and how it gives way when space is short.

    Giving way is done in steps, lowest rank first: a column is cut short at its
    ``cut_rank`` and dropped at its ``rank``."""

    header: str
    cells: Sequence[Text]
    rank: int | None = None  # when it is dropped; None: never (the table needs it)
    cut_rank: int | None = None  # when it is cut short with "…" (needs ``shrink_to``)
    shrink_to: int | None = None  # the fewest characters it is cut to
    keep_end: bool = False  # cut its start, not its end (a dotted name ends with its point)
    justify: JustifyMethod = "left"
    footer: str = ""

    @functools.cached_property
    def natural(self) -> int:
        """How wide its widest cell (or header, or footer) is."""
        texts = [Text(self.header), Text(self.footer), *self.cells]
        return max(text.cell_len for text in texts)


def table(columns: Sequence[Column], width: int | None, *, footer: bool = False) -> Table:
    """The table of ``columns`` at most ``width`` cells wide, as far as the columns that must
    stay allow; ``None``: no limit, every column whole."""
    shown = list(columns)
    cut: dict[Column, int] = {}
    if width is None:
        return _build(shown, cut, footer)
    steps = [(c.cut_rank, 0, n, c) for n, c in enumerate(columns) if c.cut_rank is not None]
    steps += [(c.rank, 1, n, c) for n, c in enumerate(columns) if c.rank is not None]
    for _, drop, _, column in sorted(steps, key=lambda step: step[:3]):
        excess = _width(shown, cut) - width
        if excess <= 0:
            break
        if drop:
            shown.remove(column)
            cut.pop(column, None)
        elif column.shrink_to is not None:
            cut[column] = max(column.shrink_to, column.natural - excess)
    # The room left goes back to the columns that were cut, the most needed first (a column
    # cut early was cut before it was known which others would be).
    for column in cut:
        cut[column] = column.shrink_to or 1
    for column in sorted(cut, key=lambda c: -(c.cut_rank or 0)):
        room = width - _width(shown, cut)
        cut[column] = min(column.natural, cut[column] + max(room, 0))
    # What is left must stay: if it is still too wide, the terminal wraps the lines.
    return _build(shown, cut, footer)


def _width(columns: Sequence[Column], cut: dict[Column, int]) -> int:
    """How wide ``_build`` makes the table: each column and its padding of one space either
    side, and one space between columns (rich measures a long table far more slowly)."""
    widths = [min(c.natural, cut.get(c, c.natural)) + 2 for c in columns]
    return sum(widths) + len(widths) - 1


class _Whole(Table):
    """A table as wide as it was fitted, never narrower: printed narrower, rich would cut
    its columns, ids among them."""

    width_needed = 0

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width_needed, self.width_needed)


def _build(columns: Sequence[Column], cut: dict[Column, int], footer: bool) -> Table:
    built = _Whole(box=_BOX, show_edge=False, show_footer=footer)
    built.width_needed = _width(columns, cut)
    for column in columns:
        built.add_column(
            column.header,
            column.footer,
            justify=column.justify,
            no_wrap=True,
            overflow="ellipsis",
            max_width=cut.get(column),
        )
    cells = [
        [_cut_start(c, cut[column]) for c in column.cells]
        if column.keep_end and column in cut
        else column.cells
        for column in columns
    ]
    for row in zip(*cells, strict=True):
        built.add_row(*row)
    return built


def _cut_start(cell: Text, width: int) -> Text:
    """``…tasks.send_email``: the end of ``cell`` in ``width`` cells."""
    if cell.cell_len <= width:
        return cell
    end = cell[len(cell) - (width - 1) :]
    while end.cell_len > width - 1:  # wide characters take two cells
        end = end[1:]
    return Text("…", style=cell.style) + end


class _WholeLine(Text):
    """A line of text that is never broken or cut (a path is copied whole)."""

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.cell_len, self.cell_len)


def whole_line(text: str) -> Text:
    """``text`` on one line, however narrow the terminal: it wraps it, not rich."""
    return _WholeLine(text, no_wrap=True, overflow="ignore")


_MEASURING = Console(file=io.StringIO(), width=_UNLIMITED, legacy_windows=False)


def show(build: Callable[[int | None], RenderableType], *, wide: bool = False) -> None:
    """Print ``build(width)`` on stdout: ``width`` is the terminal's, or ``None`` (no limit)
    with ``wide`` or when stdout is not a terminal (rich would cut lines at 80 columns).

    On a terminal, text wraps at its width; a table too wide for it even with only the
    columns that must stay is printed whole, for the terminal to wrap."""
    out = Console(highlight=False, soft_wrap=False)
    limit = None if wide or not out.is_terminal else out.width
    renderable = build(limit)
    need = Measurement.get(_MEASURING, _MEASURING.options, renderable)
    width = need.maximum if limit is None else need.minimum
    if width > out.width or limit is None:
        out = Console(
            highlight=False, soft_wrap=False, width=max(width, 1), force_terminal=out.is_terminal
        )
    out.print(renderable)
