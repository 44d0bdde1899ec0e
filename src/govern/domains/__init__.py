"""The tables of the four shipped domains: core, commerce, analytics, community."""

from govern.domains import analytics, commerce, community, core

__all__ = ["analytics", "commerce", "community", "core"]
