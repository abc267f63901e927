"""The incident response workflow (SEC-4): states, actions, the timeline. Pure rules so far."""
