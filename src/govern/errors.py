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
    │   ├── ManualLocationError    a manual location registration is malformed (name, rights)
    │   │   ├── DuplicateManualLocationError  a manual location of that name is registered
    │   │   └── UnknownManualLocationError    no manual location of that name
    │   ├── SeedError              a seed fixture is malformed (nothing is loaded)
    │   │   ├── DuplicateSeedKeyError     one natural key twice in a table
    │   │   └── BrokenSeedReferenceError  a reference to a key no fixture defines
    │   ├── UnknownAccountError    no account with that username
    │   ├── BundleError            a file is not a readable audit bundle
    │   ├── InvalidEventError      a malformed event type, aggregate or payload
    │   ├── UnknownSinkError       a sink name that is not configured
    │   ├── SinkConfigError        the sinks file is missing or malformed
    │   ├── MissingExtraError      an optional extra (govern[kafka]) is not installed
    │   ├── KeyInUseError          retiring a data key that still seals values
    │   ├── UnsearchableColumnError  a value comparison on an encrypted column
    │   ├── PolicyError            a retention policy is invalid (names policy and field)
    │   ├── UnknownPolicyError     no retention policy with that name
    │   ├── UnknownRunError        no retention run with that id
    │   ├── NotApprovedError       a policy version without sign-off cannot run
    │   ├── RestoreWindowError     a run's quarantine has passed its restore window
    │   ├── ConsentError           the consent ledger refused an input; nothing was appended
    │   │   ├── UnknownPurposeError
    │   │   ├── UnknownNoticeError           a notice or notice version that does not exist
    │   │   ├── MissingLocaleError           no text in the locale and no fallback
    │   │   ├── InvalidTimestampError        naive, or in the future
    │   │   ├── InvalidTCFStringError        not a TCF v2 TC string
    │   │   └── DuplicateIdempotencyKeyError
    │   └── DsrError               a data-subject request cannot proceed as asked
    │       ├── UnknownRequestError     no request with that id
    │       ├── IllegalTransitionError  the state machine forbids that move
    │       │   └── ManualStepError     confirming a manual step the request does not await
    │       ├── VerificationError       wrong or expired code, or too many attempts
    │       ├── DeadlineError           an extension too late or a second one
    │       └── RectificationError      a correction fails validation
    ├── DatabaseError              the database cannot be reached or used (exit 2)
    ├── MigrationError             a migration could not run (exit 2)
    ├── SinkError                  a sink could not take events (they stay in the outbox)
    └── CryptoError                a value or key cannot be used; names table, column, key id
        ├── KeyringNotBoundError   no keyring bound to the engine (govern.keys.attach)
        ├── UnknownKeyError        an envelope names a key the keyring does not hold
        ├── WrongKekError          a wrapped key does not open with GOVERN_KEK(_PREVIOUS)
        ├── TamperedValueError     truncated, altered, or sealed for another column
        └── PlaintextRefusedError  a protected column was given an unprotected value

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


class ManualLocationError(UsageError):
    """A manual location cannot be registered as asked (bad name, unknown right, no owner)."""


class DuplicateManualLocationError(ManualLocationError):
    """A manual location of that name is already registered."""


class UnknownManualLocationError(ManualLocationError):
    """No manual location of that name is registered."""


class DsrError(UsageError):
    """A data-subject request cannot proceed as asked."""


class UnknownRequestError(DsrError):
    """No data-subject request with that id."""


class IllegalTransitionError(DsrError):
    """The request's state machine does not allow that transition."""


class ManualStepError(IllegalTransitionError):
    """The request is not awaiting that manual step (wrong state, wrong step, already done)."""


class VerificationError(DsrError):
    """A wrong or expired verification code, or too many attempts (each is counted)."""


class DeadlineError(DsrError):
    """An extension after the deadline passed, or a second extension."""


class RectificationError(DsrError):
    """A correction names a column that cannot be rectified or a value that fails validation."""


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


class SeedError(UsageError):
    """A seed fixture cannot be loaded as written; the database is left unchanged."""


class DuplicateSeedKeyError(SeedError):
    """The same natural key appears twice for one table in one fixture file."""


class BrokenSeedReferenceError(SeedError):
    """A fixture refers to a natural key that no loaded fixture defines."""


class UnknownAccountError(UsageError):
    """No account with that username."""


class BundleError(UsageError):
    """The file is not an audit bundle govern can read (not a zip, no manifest)."""


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


class KeyInUseError(UsageError):
    """A data key cannot be retired (or retired yet): it is primary or still seals values."""


class UnsearchableColumnError(UsageError):
    """A query compared the values of an encrypted column, which can never match."""


class CryptoError(GovernError):
    """A value or key cannot be used. Messages name table, column and key id, never values.

    ``table``, ``column`` and ``key_id`` are set when known, for callers that branch on them.
    """

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        column: str | None = None,
        key_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.table = table
        self.column = column
        self.key_id = key_id


class KeyringNotBoundError(CryptoError):
    """A protected column was used on an engine with no keyring (call govern.keys.attach)."""


class UnknownKeyError(CryptoError):
    """An envelope names a data key that the keyring does not hold (retired, or another DB)."""


class WrongKekError(CryptoError):
    """A wrapped key was sealed by a KEK that is neither GOVERN_KEK nor GOVERN_KEK_PREVIOUS."""


class TamperedValueError(CryptoError):
    """A stored value is truncated, altered, or was sealed for another table or column."""


class PlaintextRefusedError(CryptoError):
    """A value that is not an envelope or token was bound to a protected column."""


class ConsentError(UsageError):
    """The consent ledger refused an input; nothing was appended."""


class UnknownPurposeError(ConsentError):
    """A purpose key that the catalog does not hold."""


class UnknownNoticeError(ConsentError):
    """A notice, or a version of it, that does not exist."""


class MissingLocaleError(ConsentError):
    """A notice version has no text in the locale, nor in any fallback of it."""


class InvalidTimestampError(ConsentError):
    """A timestamp without a timezone, or in the future."""


class InvalidTCFStringError(ConsentError):
    """A string that is not shaped like an IAB TCF v2 TC string."""


class DuplicateIdempotencyKeyError(ConsentError):
    """A client idempotency key that an earlier record already used."""
