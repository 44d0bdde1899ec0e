"""Locale tags (BCP 47, parsed with Babel) and the fallback chain for notice texts."""

from __future__ import annotations

import functools

from govern.errors import ConsentError


@functools.lru_cache(maxsize=1024)
def normalise(tag: str) -> str:
    """``fr_ca`` / ``FR-ca`` → ``fr-CA``; raises :class:`ConsentError` for a tag Babel rejects."""
    from babel import Locale, UnknownLocaleError

    try:
        loc = Locale.parse(tag.strip().replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        raise ConsentError(f"{tag[:40]!r} is not a known locale (BCP 47, e.g. fr-CA)") from None
    parts = [loc.language]
    if loc.script:
        parts.append(loc.script)
    if loc.territory:
        parts.append(loc.territory)
    return "-".join(parts)


def chain(tag: str, default: str) -> list[str]:
    """Most specific first: ``fr-Latn-CA`` → ``fr-Latn``, ``fr-CA``, ``fr``, then the default's."""
    out: list[str] = []
    for t in (normalise(tag), normalise(default)):
        parts = t.split("-")
        cands = [t]
        if len(parts) == 3:
            cands += [f"{parts[0]}-{parts[1]}", f"{parts[0]}-{parts[2]}"]
        cands.append(parts[0])
        out += [c for c in cands if c not in out]
    return out
