"""``sexto admin``: sign-in links for the dashboard and the list of members."""

from __future__ import annotations

import click

from bot.commands import with_runtime
from bot.runtime import Runtime
from dashboard.links import LINK_TTL, LinkRefused, issue_login_link
from dashboard.options import DashboardOptions
from storage.repositories import Roster


@click.group()
def admin() -> None:
    """Dashboard administration: sign-in links, members."""


@admin.command("login-link")
@click.option(
    "--member", "member_id", type=int, required=True, help="Member id (sexto admin members)."
)
def login_link(member_id: int) -> None:
    """Print a single-use dashboard sign-in link for a member (valid 10 minutes)."""

    async def work(runtime: Runtime) -> str:
        options = DashboardOptions.from_config(runtime.settings.config)
        async with runtime.sessions() as session, session.begin():
            try:
                return await issue_login_link(
                    session, member_id, runtime.clock.now(), options.base_url
                )
            except LinkRefused as error:
                raise click.ClickException(str(error)) from None

    link = with_runtime(work, prepare=True)
    minutes = int(LINK_TTL.total_seconds() // 60)
    click.echo(link)
    click.echo(f"Single use, valid {minutes} minutes.", err=True)


@admin.command("members")
def members() -> None:
    """List the members (id, role, active, name) to find whom to send a link."""

    async def work(runtime: Runtime) -> list[str]:
        async with runtime.sessions() as session:
            return [
                f"{m.id}\t{m.role.value}\t{'active' if m.active else 'inactive'}\t{m.display_name}"
                for m in await Roster(session).everyone()
            ]

    for line in with_runtime(work, prepare=True):
        click.echo(line)
