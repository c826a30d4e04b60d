"""Every ``durq`` command documents itself: a short help line for its group's listing, help
for each option, and a ``--help`` page that exits 0 without touching the database.

The commands are found by walking ``main``, so a new command is checked without being listed
here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from durq.cli import main


def walk(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every command under ``group``, groups included, depth first."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from walk(command, (*path, name))


COMMANDS = list(walk(main))


def find(path: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(command), name)
        assert found is not None, path
        command = found
    return command


def test_the_walk_finds_every_command_and_subcommand() -> None:
    # Guards the walk itself: a walk that found nothing would pass every test below.
    assert {("enqueue",), ("worker",), ("jobs", "purge"), ("demo", "verify")} <= set(COMMANDS)
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_short_help(path: tuple[str, ...]) -> None:
    assert find(path).get_short_help_str().strip()


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_option_has_help(path: tuple[str, ...]) -> None:
    undocumented = [
        param.name
        for param in find(path).params
        if isinstance(param, click.Option) and not (param.help or "").strip()
    ]
    assert undocumented == []


@pytest.mark.parametrize("path", [(), *COMMANDS], ids=lambda path: " ".join(("durq", *path)))
def test_help_exits_0_and_opens_no_database(path: tuple[str, ...], tmp_path: Path) -> None:
    db = tmp_path / "durq.db"
    result = CliRunner().invoke(
        main, ["--db", f"sqlite:///{db}", *path, "--help"], prog_name="durq"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Usage: {' '.join(('durq', *path))} ")
    assert not db.exists()
