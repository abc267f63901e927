"""Identity's operator commands, added to `expensura` through the `expensura.commands` entry
point (the operator CLI imports no service: it finds their commands this way).

No `from __future__ import annotations` here: typer reads the options' annotations at run
time, and they name `checked`, which only exists inside `staff_commands`."""

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

import typer

from expensura_events.envelope import Actor
from expensura_events.fields import EmailAddress, Secret
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import StaffRole

RuntimeFor = Callable[[str], ServiceRuntime]
"""Builds a service's runtime from the local stack's settings (the CLI's own wiring)."""


def staff_commands(
    runtime_for: RuntimeFor, checked: Callable[[Any], Callable[[str], str]]
) -> typer.Typer:
    """`expensura staff …`"""
    staff_app = typer.Typer(help="Staff accounts.", no_args_is_help=True)

    @staff_app.command("create-admin")
    def staff_create_admin(
        email: Annotated[str, typer.Option(callback=checked(EmailAddress))],
        password: Annotated[
            str, typer.Option(prompt=True, hide_input=True, callback=checked(Secret))
        ],
    ) -> None:
        """Create an administrator (the first one, or a break-glass account). They must enrol
        TOTP at first sign-in before they can do anything else."""
        from expensura_identity.staff.service import create_staff

        async def go() -> str:
            rt = runtime_for("identity")
            try:
                return await create_staff(
                    rt, email, password, [StaffRole.ADMINISTRATOR], Actor.system("expensura-cli")
                )
            finally:
                await rt.close()

        typer.echo(f"created administrator {asyncio.run(go())}")

    return staff_app
