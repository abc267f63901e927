"""Legal retention (RUL-2, USE-3): which loan records the law keeps, and until when."""
