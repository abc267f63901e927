"""The user's personalisation profile, if they consented to one."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from expensura_events.envelope import Actor
from expensura_events.vocabulary import ActorKind, Purpose
from expensura_events.web.auth import CurrentUser, Runtime
from expensura_events.web.problems import Problem
from expensura_identity.personalisation.projection import personalisation_profiles

router = APIRouter(tags=["personalisation"])


class Profile(BaseModel):
    sign_ins: int
    usual_hour_utc: int | None
    updated_at: datetime


class NoProfile(Problem):
    status, title = 404, "No personalisation profile"


@router.get("/v1/me/personalisation-profile", responses={404: {}})
async def my_profile(caller: CurrentUser, rt: Runtime) -> Profile:
    async with rt.engine.begin() as conn:
        row = (
            await conn.execute(
                select(personalisation_profiles).where(
                    personalisation_profiles.c.subject_id == caller.id
                )
            )
        ).one_or_none()
        if row is None:
            raise NoProfile("Without consent to personalisation there is none.")
        await rt.record_access(
            conn,
            subject_id=caller.id,
            actor=Actor(kind=ActorKind.USER, id=caller.id),
            purpose=Purpose.PERSONALISATION,
            fields=["sign_ins", "usual_hour_utc"],
            categories=["pd:DeviceBased"],
        )
    return Profile(
        sign_ins=row.sign_ins, usual_hour_utc=row.usual_hour_utc, updated_at=row.updated_at
    )
