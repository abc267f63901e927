"""Every event type of every service, registered on import (the published catalog)."""

from expensura_events.catalog import identity, platform

__all__ = ["identity", "platform"]
