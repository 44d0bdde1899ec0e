"""The signed audit bundle: contents, verification, and tampering with any file detected."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import re
import tomllib
import uuid
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from govern import consent, dsr
from govern.audit.bundle import MANIFEST, SIGNATURE, public_key_b64
from govern.audit.export import export_bundle, verify
from govern.audit.sections import Controller
from govern.db import transaction
from govern.errors import BundleError, UsageError
from govern.holds import add_hold
from govern.migrations.paths import seeds_root
from govern.seeding import seed, seed_id
from tests.helpers import keyed_engine

KEY = bytes(range(32))
CONTROLLER = Controller(name="Example Learning Ltd", contact="privacy@example.org", dpo=None)


def _export(url: str, out: Path, **kw):  # type: ignore[no-untyped-def]
    engine = keyed_engine(url)
    try:
        with transaction(engine) as session:
            return export_bundle(session, out, signing_key=KEY, controller=CONTROLLER, **kw)
    finally:
        engine.dispose()


@pytest.fixture
def bundle(migrated_url: str, tmp_path: Path) -> Path:
    engine = keyed_engine(migrated_url)
    with transaction(engine) as session:
        seed(session, "demo")
        consent.withdraw(session, "demo-grace", "marketing.email")
        add_hold(
            session,
            subject_ids=[seed_id("core", "subjects", "ada")],
            reason="litigation",
            actor="legal",
            case_ref="CASE-1",
        )
    engine.dispose()
    out = tmp_path / "bundle.zip"
    _export(migrated_url, out)
    return out


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _rewrite(src: Path, dst: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(dst, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_bundle_verifies_with_the_pinned_key(bundle: Path) -> None:
    result = verify(bundle, public_key_b64(KEY))
    assert result.ok
    assert result.pinned
    assert result.files_checked == len(_members(bundle)) - 2


def test_bundle_contents(bundle: Path) -> None:
    members = _members(bundle)
    manifest = json.loads(members[MANIFEST])
    assert {f["path"] for f in manifest["files"]} == set(members) - {MANIFEST, SIGNATURE}
    for name in ("ropa/ropa.json", "ropa/ropa.csv", "report.html", "sbom.cdx.json"):
        assert name in members
    assert manifest["sections"]["retention"] == "included"
    assert "retention/status.json" not in members
    assert manifest["sections"]["dsr"] == "empty"  # no requests in the fixture
    assert "dsr/status.json" not in members
    assert manifest["sections"]["holds"] == "included"
    ropa = json.loads(members["ropa/ropa.json"])
    assert ropa["controller"]["name"] == "Example Learning Ltd"
    assert ropa["data_protection_officer"]["contact"] == "not configured"
    core = next(a for a in ropa["activities"] if a["activity"] == "core domain")
    assert "user.contact.email" in core["categories_of_personal_data"]
    rows = list(csv.DictReader(io.StringIO(members["ropa/ropa.csv"].decode())))
    assert [r["activity"] for r in rows] == [a["activity"] for a in ropa["activities"]]
    holds = list(csv.DictReader(io.StringIO(members["holds/legal_holds.csv"].decode())))
    assert [(h["case_ref"], h["subjects"]) for h in holds] == [("CASE-1", "1")]
    assert b"litigation" not in members["holds/legal_holds.csv"]
    audit = [json.loads(line) for line in members["audit/audit_log.jsonl"].splitlines()]
    assert {a["action"] for a in audit} >= {"seed.load", "hold.add"}


def test_consent_and_encryption_sections_hold_real_evidence(bundle: Path) -> None:
    members = _members(bundle)
    ledger = list(csv.DictReader(io.StringIO(members["consent/ledger.csv"].decode())))
    seeded = tomllib.loads((seeds_root() / "consent" / "demo.toml").read_text())["consents"]
    expected = sorted([(c["subject"], c["event"]) for c in seeded] + [("demo-grace", "withdrawn")])
    assert sorted((r["subject"], r["event"]) for r in ledger) == expected
    report = json.loads(members["consent/verify.json"])
    assert (report["records"], report["findings"]) == (len(expected), [])
    keys = json.loads(members["encryption/keys.json"])
    assert keys
    assert all(set(k) >= {"id", "purpose", "state", "age_days"} for k in keys)
    assert b"wrapped" not in members["encryption/keys.json"]
    coverage = json.loads(members["encryption/coverage.json"])
    assert {c["table"] for c in coverage["columns"]} >= {"subjects", "accounts"}
    ropa = json.loads(members["ropa/ropa.json"])
    assert {p["purpose"] for p in ropa["consent_purposes"]} == {
        "analytics.product",
        "marketing.email",
    }
    page = members["report.html"].decode()
    assert "Consents given and withdrawn per week" in page


def test_bundle_holds_no_personal_values(bundle: Path) -> None:
    blob = b"".join(_members(bundle).values())
    for needle in (b"ada@example.org", b"Lovelace", b"4242 4242"):
        assert needle not in blob


def test_sbom_is_cyclonedx_1_5(bundle: Path) -> None:
    doc = json.loads(_members(bundle)["sbom.cdx.json"])
    assert (doc["bomFormat"], doc["specVersion"], doc["version"]) == ("CycloneDX", "1.5", 1)
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", doc["serialNumber"])
    refs = [c["bom-ref"] for c in doc["components"]]
    assert len(refs) == len(set(refs))
    names = {c["name"].lower() for c in doc["components"]}
    assert {"sqlalchemy", "cryptography", "argon2-cffi", "govern"} <= names
    for c in doc["components"]:
        assert c["type"] == "library"
        assert c["purl"].startswith("pkg:pypi/")
    known = set(refs) | {doc["metadata"]["component"]["bom-ref"]}
    for dep in doc["dependencies"]:
        assert dep["ref"] in known
        assert set(dep["dependsOn"]) <= known


def test_report_is_self_contained(bundle: Path) -> None:
    page = _members(bundle)["report.html"].decode()
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)
    assert "@import" not in page
    assert "url(" not in page
    assert page.count("<svg") >= 2
    assert "not available in this version" not in page
    assert "Retention" in page


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_changing_any_byte_of_any_file_is_named(
    bundle: Path, tmp_path: Path, data: st.DataObject
) -> None:
    members = _members(bundle)
    name = data.draw(st.sampled_from(sorted(set(members) - {MANIFEST, SIGNATURE})))
    blob = bytearray(members[name])
    pos = data.draw(st.integers(0, len(blob) - 1))
    blob[pos] ^= data.draw(st.integers(1, 255))
    tampered = tmp_path / "t.zip"
    _rewrite(bundle, tampered, {**members, name: bytes(blob)})
    result = verify(tampered, public_key_b64(KEY))
    assert not result.ok
    assert result.altered == [name]
    assert result.signature_ok


def test_edited_manifest_breaks_the_signature(bundle: Path, tmp_path: Path) -> None:
    members = _members(bundle)
    manifest = json.loads(members[MANIFEST])
    manifest["files"][0]["sha256"] = "0" * 64
    tampered = tmp_path / "t.zip"
    _rewrite(bundle, tampered, {**members, MANIFEST: json.dumps(manifest).encode()})
    assert not verify(tampered, public_key_b64(KEY)).signature_ok


def test_resigned_bundle_fails_against_the_pinned_key(bundle: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    members = _members(bundle)
    other = bytes(range(1, 33))
    sig = Ed25519PrivateKey.from_private_bytes(other).sign(members[MANIFEST])
    tampered = tmp_path / "t.zip"
    _rewrite(bundle, tampered, {**members, SIGNATURE: base64.b64encode(sig)})
    assert not verify(tampered, public_key_b64(KEY)).signature_ok


def test_added_and_removed_files_are_named(bundle: Path, tmp_path: Path) -> None:
    members = _members(bundle)
    del members["sbom.cdx.json"]
    members["extra.txt"] = b"hello"
    tampered = tmp_path / "t.zip"
    _rewrite(bundle, tampered, members)
    result = verify(tampered, public_key_b64(KEY))
    assert (result.missing, result.unlisted, result.ok) == (["sbom.cdx.json"], ["extra.txt"], False)


def test_not_a_bundle(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(BundleError, match="not a readable zip"):
        verify(junk)
    empty = tmp_path / "empty.zip"
    zipfile.ZipFile(empty, "w").close()
    with pytest.raises(BundleError, match="not an audit bundle"):
        verify(empty)


def test_empty_period_gives_explicit_empty_sections(migrated_url: str, tmp_path: Path) -> None:
    out = tmp_path / "b.zip"
    start = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
    result = _export(migrated_url, out, period_from=start, period_to=start + dt.timedelta(days=1))
    statuses = {s.key: s.status for s in result.sections}
    assert statuses["audit"] == "empty"
    assert statuses["holds"] == "empty"
    assert _members(out)["audit/audit_log.jsonl"] == b""
    assert verify(out, public_key_b64(KEY)).ok


def test_inverted_period_is_refused_and_writes_nothing(migrated_url: str, tmp_path: Path) -> None:
    out = tmp_path / "b.zip"
    start = dt.datetime(2025, 1, 2, tzinfo=dt.UTC)
    with pytest.raises(UsageError, match="after its end"):
        _export(migrated_url, out, period_from=start, period_to=start - dt.timedelta(days=1))
    assert list(tmp_path.iterdir()) == []


def test_dsr_register_and_statistics(migrated_url: str, tmp_path: Path) -> None:
    calendar = dsr.WorkCalendar("UTC")
    now = dt.datetime.now(dt.UTC)
    engine = keyed_engine(migrated_url)
    ids: dict[str, uuid.UUID] = {}
    with transaction(engine) as s:
        seed(s, "demo")

        def submit(kind: str, who: str, received_at: dt.datetime | None = None) -> uuid.UUID:
            sid = str(seed_id("core", "subjects", who))
            out = dsr.submit(
                s,
                type=kind,
                identifiers={"subject_id": sid},
                calendar=calendar,
                actor="portal",
                verified=True,
                received_at=received_at,
            )
            return out.request.id

        ids["access"] = submit("access", "alan")
        ids["erasure"] = submit("erasure", "edsger")
        ids["extended"] = submit("restriction", "katherine")
        ids["denied"] = submit("objection", "barbara")
        ids["late"] = submit("access", "hedy", received_at=now - dt.timedelta(days=120))
        for k in ("access", "erasure"):
            dsr.approve(s, ids[k], actor="dpo")
        first_due = dsr.show(s, ids["extended"]).request.due_at
        dsr.extend(s, ids["extended"], reason="many requests", actor="dpo", calendar=calendar)
        dsr.deny(s, ids["denied"], actor="dpo", reason="manifestly unfounded")
    for k in ("access", "erasure"):
        done = dsr.process_request(engine, ids[k], export_dir=tmp_path / "dsr")
        assert done.state == "completed"
    engine.dispose()
    out = tmp_path / "b.zip"
    result = _export(migrated_url, out)
    assert {s.key: s.status for s in result.sections}["dsr"] == "included"
    members = _members(out)
    rows = {
        r["request_id"]: r
        for r in csv.DictReader(io.StringIO(members["dsr/register.csv"].decode()))
    }
    as_json = {r["request_id"]: r for r in json.loads(members["dsr/register.json"])}
    assert set(rows) == set(as_json) == {str(v) for v in ids.values()}
    access, erasure = rows[str(ids["access"])], rows[str(ids["erasure"])]
    assert (access["type"], access["state"], access["on_time"]) == ("access", "completed", "yes")
    assert access["outcome"].startswith("completed: package of ")
    assert access["completed_at"]
    assert (erasure["type"], erasure["state"], erasure["on_time"]) == (
        "erasure",
        "completed",
        "yes",
    )
    ext = as_json[str(ids["extended"])]
    assert dt.datetime.fromisoformat(ext["deadline"]) == first_due
    assert dt.datetime.fromisoformat(ext["extended_deadline"]) > first_due
    assert ext["extension_reason"] == "many requests"
    assert (ext["state"], ext["on_time"]) == ("verified", "open")
    assert rows[str(ids["denied"])]["outcome"] == "rejected"
    late = rows[str(ids["late"])]
    assert (late["on_time"], late["extended_deadline"]) == ("overdue", "")
    stats = json.loads(members["dsr/statistics.json"])
    assert (stats["total"], stats["completed"], stats["on_time"]) == (5, 2, 2)
    assert (stats["on_time_rate"], stats["open_overdue"], stats["extended"]) == (1.0, 1, 1)
    assert stats["by_type"] == {"access": 2, "erasure": 1, "restriction": 1, "objection": 1}
    assert sum(w["received"] for w in stats["weekly"]) == 5
    assert sum(w["completed_on_time"] for w in stats["weekly"]) == 2
    dsr_files = b"".join(v for k, v in members.items() if k.startswith("dsr/"))
    for who in ("alan", "edsger", "katherine", "barbara", "hedy"):
        assert f"demo-{who}".encode() not in dsr_files
        assert str(seed_id("core", "subjects", who)).encode() not in dsr_files
    assert b"manifestly unfounded" not in dsr_files
    page = members["report.html"].decode()
    assert "DSR volume per week" in page
    assert "DSR on-time rate per week (completed requests)" in page
    assert verify(out, public_key_b64(KEY)).ok


def test_dsr_register_is_limited_to_the_period(migrated_url: str, tmp_path: Path) -> None:
    calendar = dsr.WorkCalendar("UTC")
    engine = keyed_engine(migrated_url)
    with transaction(engine) as s:
        seed(s, "demo")
        dsr.submit(
            s,
            type="access",
            identifiers={"subject_id": str(seed_id("core", "subjects", "alan"))},
            calendar=calendar,
            actor="portal",
            received_at=dt.datetime(2024, 3, 4, tzinfo=dt.UTC),
        )
    engine.dispose()
    start = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
    out = tmp_path / "b.zip"
    result = _export(migrated_url, out, period_from=start, period_to=start + dt.timedelta(days=1))
    assert {s.key: s.status for s in result.sections}["dsr"] == "empty"
    members = _members(out)
    assert members["dsr/register.json"] == b"[]\n"
    assert len(members["dsr/register.csv"].decode().splitlines()) == 1
    assert json.loads(members["dsr/statistics.json"])["total"] == 0


def test_retention_evidence_and_erasure_time_limits(bundle: Path) -> None:
    members = _members(bundle)
    policies = json.loads(members["retention/policies.json"])
    names = {p["name"] for p in policies["policies"]}
    assert {"analytics-events", "analytics-sessions"} <= names
    assert all(
        len(p["content_hash"]) == 64 and p["approved"] is False for p in policies["policies"]
    )
    assert json.loads(members["retention/runs.json"]) == []
    ropa = json.loads(members["ropa/ropa.json"])
    analytics = next(a for a in ropa["activities"] if a["activity"] == "analytics domain")
    assert "(policy analytics-events)" in analytics["erasure_time_limits"]["analytics_events"]
