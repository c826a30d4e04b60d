"""``durq demo``: commands for the demo workload (``durq.demo``)."""

from __future__ import annotations

import click

from durq.cli.common import CommandError, Env, pass_env


@click.group()
def demo() -> None:
    """The demo workload: money transfers applied to a ledger.

    `durq produce` submits transfers, `durq worker --handler durq.demo:apply_transfer`
    applies them, `durq demo verify` checks the ledger.
    """


@demo.command("verify")
@pass_env
def demo_verify(env: Env) -> None:
    """Check the demo ledger: one entry per succeeded transfer, balances equal the entries.

    Exit 0 when it holds; else print each discrepancy and exit 1. The ledger's tables live
    in the queue's own database, written in the same transactions that complete the jobs.
    """
    from durq import demo as workload

    env.queue(create=False)  # only reads: a mistyped URL is refused, not made a database
    where = env.display_url
    problems = workload.verify(env.db_url)
    if not problems:
        click.echo(f"ledger OK: {where}")
        return
    for problem in problems:
        click.echo(problem)
    n = len(problems)
    raise CommandError(f"the ledger in {where} has {n} discrepanc{'ies' if n != 1 else 'y'}")
