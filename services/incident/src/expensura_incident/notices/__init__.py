"""Customer notices (USE-10): loans asks, incident delivers by e-mail and records the outcome."""
