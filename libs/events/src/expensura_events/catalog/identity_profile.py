"""Events: identity_profile."""
