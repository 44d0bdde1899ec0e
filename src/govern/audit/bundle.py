"""The bundle file: a zip whose members are hashed while they are written, and signed.

``manifest.json`` lists every member with its SHA-256 and size; ``manifest.sig`` is the
base64 Ed25519 signature of the exact bytes of ``manifest.json``. Members are written in
chunks, so a section of any size needs only a bounded amount of memory.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from govern.errors import BundleError

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
FORMAT = "govern-audit-bundle/1"
_CHUNK = 1 << 16


@dataclass
class Member:
    path: str
    sha256: str
    size: int


class _HashingWriter(io.RawIOBase):
    def __init__(self, target: IO[bytes]) -> None:
        self._target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = bytes(data)
        self.digest.update(view)
        self.size += len(view)
        self._target.write(view)
        return len(view)


class BundleWriter:
    """Writes members into a zip and remembers their hashes for the manifest."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self._zf = zf
        self.members: list[Member] = []

    @contextmanager
    def text(self, path: str) -> Iterator[IO[str]]:
        """A text stream (UTF-8, ``\\n`` line ends) writing member ``path``."""
        with self.binary(path) as raw:
            stream = io.TextIOWrapper(raw, encoding="utf-8", newline="\n", write_through=True)
            try:
                yield stream
            finally:
                stream.flush()
                stream.detach()

    @contextmanager
    def binary(self, path: str) -> Iterator[IO[bytes]]:
        if path in (MANIFEST, SIGNATURE) or any(m.path == path for m in self.members):
            raise ValueError(f"bundle member {path} written twice")  # pragma: no cover
        info = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        with self._zf.open(info, "w", force_zip64=True) as target:
            hashing = _HashingWriter(target)
            buffered = io.BufferedWriter(hashing, buffer_size=_CHUNK)
            yield buffered
            buffered.flush()
        self.members.append(Member(path, hashing.digest.hexdigest(), hashing.size))

    def add(self, path: str, data: bytes | str) -> None:
        with self.binary(path) as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)

    def add_json(self, path: str, value: Any) -> None:
        self.add(path, json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def public_key_b64(private_seed: bytes) -> str:
    """The base64 raw Ed25519 public key of a 32-byte private seed."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PrivateKey.from_private_bytes(private_seed)
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def key_id(public_b64: str) -> str:
    """A short, stable fingerprint of a public key: first 16 hex digits of its SHA-256."""
    return hashlib.sha256(base64.b64decode(public_b64)).hexdigest()[:16]


def seal(
    zf: zipfile.ZipFile, writer: BundleWriter, private_seed: bytes, meta: dict[str, Any]
) -> str:
    """Write ``manifest.json`` and ``manifest.sig``; returns the manifest's SHA-256."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pub = public_key_b64(private_seed)
    manifest = {
        "format": FORMAT,
        **meta,
        "signature": {"algorithm": "Ed25519", "public_key": pub, "key_id": key_id(pub)},
        "files": [{"path": m.path, "sha256": m.sha256, "size": m.size} for m in writer.members],
    }
    body = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    sig = Ed25519PrivateKey.from_private_bytes(private_seed).sign(body)
    for name, data in ((MANIFEST, body), (SIGNATURE, base64.b64encode(sig) + b"\n")):
        info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, data)
    return hashlib.sha256(body).hexdigest()


@dataclass
class Verification:
    signature_ok: bool
    key_id: str
    pinned: bool
    altered: list[str]
    missing: list[str]
    unlisted: list[str]
    files_checked: int


def verify_bundle(path: Path, public_key: str | None = None) -> Verification:
    """Check the manifest's signature and every member's SHA-256.

    With ``public_key`` (base64 raw Ed25519) the signature must be by that key; without,
    the key embedded in the manifest is used and the result says it was not pinned.
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{path} is not a readable zip file ({exc.__class__.__name__})") from None
    with zf:
        all_names = zf.namelist()
        names = set(all_names)
        twice = sorted({n for n in all_names if all_names.count(n) > 1})
        if MANIFEST not in names or SIGNATURE not in names:
            raise BundleError(f"{path} has no {MANIFEST} and {SIGNATURE}: not an audit bundle")
        body = zf.read(MANIFEST)
        try:
            manifest = json.loads(body)
            embedded = manifest["signature"]["public_key"]
            files = manifest["files"]
            sig = base64.b64decode(zf.read(SIGNATURE).strip(), validate=True)
        except (ValueError, KeyError, TypeError):
            manifest, embedded, files, sig = None, None, None, b""
        if manifest is None or embedded is None or files is None:
            return Verification(False, "", public_key is not None, [MANIFEST], [], [], 0)
        chosen = public_key or embedded
        try:
            Ed25519PublicKey.from_public_bytes(base64.b64decode(chosen)).verify(sig, body)
            signature_ok = True
        except (InvalidSignature, ValueError):
            signature_ok = False
        altered, missing = [], []
        listed = set()
        for entry in files:
            name = str(entry.get("path"))
            listed.add(name)
            if name not in names:
                missing.append(name)
                continue
            digest = hashlib.sha256()
            with zf.open(name) as member:
                while chunk := member.read(_CHUNK):
                    digest.update(chunk)
            if digest.hexdigest() != entry.get("sha256"):
                altered.append(name)
        unlisted = sorted(names - listed - {MANIFEST, SIGNATURE})
        altered += [n for n in twice if n not in altered]  # a second member shadowing one
        return Verification(
            signature_ok=signature_ok,
            key_id=key_id(chosen) if signature_ok else "",
            pinned=public_key is not None,
            altered=altered,
            missing=missing,
            unlisted=unlisted,
            files_checked=len(listed),
        )
