"""Events: identity_staff."""
