"""A CycloneDX 1.5 SBOM of the Python environment govern runs in, from importlib.metadata."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from importlib import metadata
from typing import Any, cast

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _license(dist: metadata.Distribution) -> list[dict[str, Any]]:
    meta: Any = dist.metadata
    expr = (meta.get("License-Expression") or "").strip()
    if expr:
        return [{"expression": expr}]
    text = (meta.get("License") or "").strip()
    if text and text.upper() != "UNKNOWN" and len(text) <= 100 and "\n" not in text:
        return [{"license": {"name": text}}]
    classifiers = [
        c.split(" :: ")[-1]
        for c in meta.get_all("Classifier") or []
        if c.startswith("License ::") and c.count("::") >= 2
    ]
    return [{"license": {"name": c}} for c in sorted(set(classifiers))]


def sbom(now: dt.datetime | None = None) -> dict[str, Any]:
    """The SBOM document: every installed distribution, its purl, licence and dependencies."""
    from govern import __version__

    dists: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions():
        name = cast(Any, dist.metadata).get("Name")
        if name:
            dists.setdefault(_norm(name), dist)
    refs = {key: f"pkg:pypi/{key}@{d.version}" for key, d in sorted(dists.items())}
    components = []
    dependencies = []
    for key, dist in sorted(dists.items()):
        comp: dict[str, Any] = {
            "type": "library",
            "bom-ref": refs[key],
            "name": dist.metadata["Name"],
            "version": dist.version,
            "purl": refs[key],
        }
        lic = _license(dist)
        if lic:
            comp["licenses"] = lic
        components.append(comp)
        needs = set()
        for req in dist.requires or []:
            if "extra ==" in req:
                continue
            m = _NAME.match(req)
            if m and _norm(m.group(1)) in refs:
                needs.add(refs[_norm(m.group(1))])
        dependencies.append({"ref": refs[key], "dependsOn": sorted(needs)})
    root_ref = "govern-environment"
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": stamp,
            "tools": {
                "components": [{"type": "application", "name": "govern", "version": __version__}]
            },
            "component": {
                "type": "application",
                "bom-ref": root_ref,
                "name": "govern runtime environment",
                "version": __version__,
            },
        },
        "components": components,
        "dependencies": [{"ref": root_ref, "dependsOn": sorted(refs.values())}, *dependencies],
    }
