"""Incident grading (SEC-4): the ENISA 2013 severity of a personal-data breach (pure rules)."""
