"""The ``durq`` command line (being written)."""

import click


@click.group()
def main() -> None:
    """durq: a durable job queue."""
