"""Breach notices to affected subjects and the public notice (SEC-5, USE-10)."""
