"""A loan after its offer: disclosure, lifecycle, delinquency and payments (USE-3)."""
