"""The HTTP answers of a risk hold, shared by the views whose step a hold stops (assessment,
acceptance): 409, and nothing changed."""

from __future__ import annotations

from expensura_events.web.problems import Problem
from expensura_loans.risk.service import HeldForReview, RefusedAfterReview


class HeldForReviewProblem(Problem):
    status, title = 409, "Held for review"


class RefusedAfterReviewProblem(Problem):
    status, title = 409, "Refused after review"


def hold_problem(exc: HeldForReview | RefusedAfterReview) -> Problem:
    if isinstance(exc, HeldForReview):
        return HeldForReviewProblem(
            "A risk review must conclude before this can go on; nothing changed."
        )
    return RefusedAfterReviewProblem("The application was refused after a risk review.")
