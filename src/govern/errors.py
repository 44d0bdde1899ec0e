"""The exceptions govern raises.

Every error is a :class:`GovernError`; the CLI turns them into one line on
stderr and an exit status, library callers catch the class they care about::

    GovernError
    ├── UsageError                 bad input from a caller (exit 2)
    │   ├── ConfigError            a GOVERN_* setting is missing or malformed
    │   ├── UnknownDomainError
    │   ├── UnknownRevisionError
    │   ├── DependentDomainError   rolling back a domain others depend on
    │   ├── UnknownSubjectError    no data subject with that id
    │   ├── UnknownHoldError       no legal hold with that id
    │   ├── InvalidEventError      a malformed event type, aggregate or payload
    │   ├── UnknownSinkError       a sink name that is not configured
    │   ├── SinkConfigError        the sinks file is missing or malformed
    │   ├── MissingExtraError      an optional extra (govern[kafka]) is not installed
    │   ├── PolicyError            a retention policy is invalid (names policy and field)
    │   ├── UnknownPolicyError     no retention policy with that name
    │   ├── UnknownRunError        no retention run with that id
    │   ├── NotApprovedError       a policy version without sign-off cannot run
    │   └── RestoreWindowError     a run's quarantine has passed its restore window
    ├── DatabaseError              the database cannot be reached or used (exit 2)
    ├── MigrationError             a migration could not run (exit 2)
    └── SinkError                  a sink could not take events (they stay in the outbox)

Messages never contain secrets or personal data: they name settings, tables,
columns, ids and revisions, never values.
"""

from __future__ import annotations


class GovernError(Exception):
    """Base of every error govern raises on purpose."""

    exit_code: int = 2


class UsageError(GovernError):
    """The caller asked for something that cannot be done as asked."""


class ConfigError(UsageError):
    """A setting is missing, malformed or unknown."""


class UnknownDomainError(UsageError):
    """A domain name that govern does not ship."""


class UnknownRevisionError(UsageError):
    """A migration revision that does not exist in the named domain."""


class DependentDomainError(UsageError):
    """A domain cannot be rolled back while migrated domains depend on it."""


class UnknownSubjectError(UsageError):
    """No data subject with that id."""


class UnknownHoldError(UsageError):
    """No legal hold with that id."""


class PolicyError(UsageError):
    """A retention policy is malformed; the message names the policy and the field."""


class UnknownPolicyError(UsageError):
    """No retention policy with that name."""


class UnknownRunError(UsageError):
    """No retention run with that id."""


class NotApprovedError(UsageError):
    """A policy that is unapproved, or changed since its approval, can only be simulated."""


class RestoreWindowError(UsageError):
    """A run's quarantined rows have passed the restore window (or were already restored)."""


class DatabaseError(GovernError):
    """The database cannot be reached, or refused the operation."""


class MigrationError(GovernError):
    """A migration step failed; the database was left at the last good revision."""


class InvalidEventError(UsageError):
    """An event type not shaped ``govern.<area>.<what>``, a bad aggregate or unusable data."""


class UnknownSinkError(UsageError):
    """A sink name that the sinks configuration does not define."""


class SinkConfigError(UsageError):
    """The sinks configuration (``GOVERN_SINKS_FILE``) is missing, unreadable or malformed."""


class MissingExtraError(UsageError):
    """An optional dependency is not installed; the message names the extra to install."""


class SinkError(GovernError):
    """A sink refused events or could not be reached; nothing is lost, the relay retries.

    ``delivered`` counts the events of the batch that the sink did take before failing.
    """

    def __init__(self, message: str, delivered: int = 0) -> None:
        super().__init__(message)
        self.delivered = delivered
