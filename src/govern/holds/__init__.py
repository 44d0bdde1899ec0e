"""Legal holds (GDPR Art. 17(3)(e)): subjects whose data must not be erased or purged."""

from govern.holds.service import (
    HoldList,
    HoldOut,
    add_hold,
    held_subject_ids,
    is_held,
    list_holds,
    release_hold,
)

__all__ = [
    "HoldList",
    "HoldOut",
    "add_hold",
    "held_subject_ids",
    "is_held",
    "list_holds",
    "release_hold",
]
