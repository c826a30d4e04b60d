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
    """Check the demo ledger: balances equal the applied transfers, none applied twice.

    Exit 0 when it holds; else print each discrepancy and exit 1. The ledger is
    $DURQ_DEMO_DB, by default beside the queue's database file.
    """
    from durq import demo as workload

    path = workload.ledger_path(env.db_url)
    problems = workload.verify(path)
    if not problems:
        click.echo(f"ledger OK: {path}")
        return
    for problem in problems:
        click.echo(problem)
    n = len(problems)
    raise CommandError(f"the ledger {path} has {n} discrepanc{'ies' if n != 1 else 'y'}")
