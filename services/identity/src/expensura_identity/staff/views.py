"""HTTP routes for staff (being built)."""

from fastapi import APIRouter

router = APIRouter(tags=["staff"])
