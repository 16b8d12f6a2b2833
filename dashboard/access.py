"""Who is looking: a member's role and the schools whose incidents they may see."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Member, Role
from storage.repositories import (
    ConfidentialityRegister,
    IncidentRegister,
    MemberRecords,
    Officers,
)

COORDINATORS = (Role.COORDINATOR, Role.ADMIN)


@dataclass(frozen=True)
class Viewer:
    """A signed-in member, as every page and query sees them."""

    member_id: int
    name: str
    role: Role
    language: str
    schools: frozenset[str] | None  # None: every school

    @property
    def coordinates(self) -> bool:
        """Coordinators and administrators see everything and administer."""
        return self.role in COORDINATORS

    def register(self, session: AsyncSession) -> IncidentRegister:
        """The incidents this viewer may see, and nothing else."""
        return IncidentRegister(session, self.schools)

    def member_records(self, session: AsyncSession) -> MemberRecords:
        """Members' data for their exports: coordinators only."""
        if not self.coordinates:
            raise PermissionError("only coordinators export a member's data")
        return MemberRecords(session, self.register(session))

    def confidentiality(self, session: AsyncSession) -> ConfidentialityRegister:
        """The register of confidentiality incidents: coordinators only."""
        if not self.coordinates:
            raise PermissionError("only coordinators keep the confidentiality register")
        return ConfidentialityRegister(session)


async def visible_schools(session: AsyncSession, member: Member) -> frozenset[str] | None:
    """The schools whose incidents a member may see (None: all); like the bot's /incidents."""
    if member.role in COORDINATORS:
        return None
    if member.role is Role.OFFICER:
        return frozenset(await Officers(session).schools_of(member.id))
    return frozenset()


async def viewer_for(session: AsyncSession, member: Member) -> Viewer:
    """The viewer a member is."""
    return Viewer(
        member_id=member.id,
        name=member.display_name,
        role=member.role,
        language=member.language,
        schools=await visible_schools(session, member),
    )
