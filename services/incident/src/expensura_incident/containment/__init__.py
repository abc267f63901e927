"""What the owning services did with the incident's containment requests (SEC-4)."""
