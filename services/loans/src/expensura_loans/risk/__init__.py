"""Fraud and risk signals on loan applications (USE-6): pure rules and the review hold."""
