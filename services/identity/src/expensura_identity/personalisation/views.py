"""The user's personalisation profile, if they consented to one."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from expensura_events.web.auth import CurrentUser, Runtime
from expensura_events.web.problems import Problem
from expensura_identity.personalisation import service
from expensura_identity.personalisation.domain import NoProfile

router = APIRouter(tags=["personalisation"])


class Profile(BaseModel):
    sign_ins: int
    usual_hour_utc: int | None
    updated_at: datetime


class NoProfileProblem(Problem):
    status, title = 404, "No personalisation profile"


@router.get("/v1/me/personalisation-profile", responses={404: {}})
async def my_profile(caller: CurrentUser, rt: Runtime) -> Profile:
    try:
        found = await service.my_profile(rt, caller.id)
    except NoProfile:
        raise NoProfileProblem("Without consent to personalisation there is none.") from None
    return Profile(
        sign_ins=found.sign_ins, usual_hour_utc=found.usual_hour_utc, updated_at=found.updated_at
    )
