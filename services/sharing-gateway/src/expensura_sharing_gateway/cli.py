"""The gateway's operator commands, added to `expensura` through the `expensura.commands`
entry point (the operator CLI imports no service: it finds their commands this way). They
call the same use cases as the HTTP routes.

No `from __future__ import annotations` here: typer reads the options' annotations at run
time, and they name `checked`, which only exists inside `disclosures_commands`."""

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from expensura_events.fields import Identifier
from expensura_events.runtime import ServiceRuntime

RuntimeFor = Callable[[str], ServiceRuntime]
"""Builds a service's runtime from the local stack's settings (the CLI's own wiring)."""


def disclosures_commands(
    runtime_for: RuntimeFor, checked: Callable[[Any], Callable[[str], str]]
) -> typer.Typer:
    """`expensura disclosures …`"""
    disclosures_app = typer.Typer(
        help="Proofs about disclosures, from the logs.", no_args_is_help=True
    )
    console = Console()

    @disclosures_app.command("prove-withdrawal")
    def prove_withdrawal(
        subject_id: Annotated[str, typer.Option("--subject", callback=checked(Identifier))],
        consent_id: Annotated[str, typer.Option("--consent", callback=checked(Identifier))],
    ) -> None:
        """Prove from the logs that nothing left under a consent after it was withdrawn: the
        withdrawal in consent's, the disclosures in the gateway's and the releases of values
        in identity's. Exit 1 if the logs show otherwise (or no withdrawal)."""
        from expensura_sharing_gateway.disclosures.domain import WithdrawalProof
        from expensura_sharing_gateway.disclosures.service import (
            prove_no_disclosure_after_withdrawal,
        )

        async def go() -> WithdrawalProof:
            rt = runtime_for("sharing-gateway")
            try:
                return await prove_no_disclosure_after_withdrawal(rt, subject_id, consent_id)
            finally:
                await rt.close()

        proof = asyncio.run(go())
        table = Table("log", "sequence", "recipient", "at", "decision", "fields", "verdict")
        for rows, verdict in (
            (proof.before, "[green]before withdrawal"),
            (proof.after, "[red]AFTER withdrawal"),
        ):
            for row in rows:
                table.add_row(
                    row["log"],
                    str(row["sequence"]),
                    row["partner"],
                    row["at"],
                    row["decision_id"],
                    ", ".join(row["fields"]),
                    verdict,
                )
        console.print(table)
        if proof.withdrawn_at is None:
            console.print(f"[red]consent {consent_id} of {subject_id} has no withdrawal in the log")
            raise typer.Exit(1)
        verdict = "PROVEN" if proof.holds else "VIOLATED"
        console.print(
            f"consent withdrawn at {proof.withdrawn_at.isoformat()}: {len(proof.before)} "
            f"disclosures or releases before, {len(proof.after)} after — {verdict}"
        )
        raise typer.Exit(0 if proof.holds else 1)

    return disclosures_app
