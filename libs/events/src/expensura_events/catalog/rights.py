"""Events: rights."""
