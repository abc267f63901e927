"""HTTP routes for verification (being built)."""

from fastapi import APIRouter

router = APIRouter(tags=["verification"])
