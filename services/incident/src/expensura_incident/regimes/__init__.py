"""Notification regimes (SEC-5): which regulators hear of a breach, by when (pure rules)."""
