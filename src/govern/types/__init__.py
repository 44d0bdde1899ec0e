"""SQLAlchemy column types, one per module."""

from govern.types.utc import UTCDateTime

__all__ = ["UTCDateTime"]
