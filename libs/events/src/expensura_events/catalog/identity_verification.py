"""Events: identity_verification."""
