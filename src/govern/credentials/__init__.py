"""Credentials: Argon2id hashing, scanning for demo passwords and weak schemes, rotation."""

from govern.credentials.hashing import hash_password, identify, matches, random_password
from govern.credentials.schemas import Finding, PurgeResult, RotateResult, ScanReport
from govern.credentials.service import demo_passwords, purge_demo, rotate, scan

__all__ = [
    "Finding",
    "PurgeResult",
    "RotateResult",
    "ScanReport",
    "demo_passwords",
    "hash_password",
    "identify",
    "matches",
    "purge_demo",
    "random_password",
    "rotate",
    "scan",
]
