"""HTTP routes for profile (being built)."""

from fastapi import APIRouter

router = APIRouter(tags=["profile"])
