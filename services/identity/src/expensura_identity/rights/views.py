"""HTTP routes for rights (being built)."""

from fastapi import APIRouter

router = APIRouter(tags=["rights"])
