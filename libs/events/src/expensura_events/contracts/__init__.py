"""Wire models more than one service speaks, declared once (like the event catalog)."""
