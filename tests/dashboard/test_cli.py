"""``sexto admin``: a sign-in link for the first administrator, printed in the terminal."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from click.testing import CliRunner

from bot.runtime import Runtime
from bot.settings import Settings
from dashboard.app import create_app
from dashboard.cli import admin
from dashboard.options import DashboardOptions
from storage.models import Role
from tests.conftest import add_member
from tests.dashboard.conftest import SECRET
from tests.dashboard.scenario import csrf_of
from tests.support.process import environment, write_config


def test_login_link_prints_a_link_that_signs_in(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    database = f"sqlite:///{tmp_path / 'sexto.db'}"
    env = environment(config, database)

    async def prepare() -> int:
        runtime = Runtime.create(Settings.load(env))
        await runtime.prepare_database()
        try:
            member = await add_member(runtime, Role.COORDINATOR, (), 3001, "Coord", "en")
            return member.id
        finally:
            await runtime.close()

    member_id = asyncio.run(prepare())
    runner = CliRunner()
    listed = runner.invoke(admin, ["members"], env=env, catch_exceptions=False)
    assert listed.exit_code == 0
    assert f"{member_id}\tcoordinator\tactive\tCoord" in listed.output

    printed = runner.invoke(
        admin, ["login-link", "--member", str(member_id)], env=env, catch_exceptions=False
    )
    assert printed.exit_code == 0, printed.output
    link = printed.stdout.strip().splitlines()[0]
    assert link.startswith("http://127.0.0.1:8080/login?token=")

    async def use() -> int:
        runtime = Runtime.create(Settings.load(env))
        try:
            app = create_app(
                runtime,
                local_mode=False,
                secret=SECRET,
                options=DashboardOptions(base_url="http://testserver"),
            )
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                page = await c.get(link.replace("http://127.0.0.1:8080", ""))
                token = link.split("token=", 1)[1]
                answer = await c.post("/login", data={"csrf": csrf_of(page.text), "token": token})
                return answer.status_code
        finally:
            await runtime.close()

    assert asyncio.run(use()) == 303


def test_login_link_refuses_unknown_members_and_professionals(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    env = environment(config, f"sqlite:///{tmp_path / 'sexto.db'}")
    result = CliRunner().invoke(admin, ["login-link", "--member", "42"], env=env)
    assert result.exit_code == 1
    assert "no active member 42" in result.output
