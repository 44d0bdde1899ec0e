"""Seeds: per-domain fixtures with environment overlays and deterministic ids.

``govern seed`` loads ``seeds/<domain>/`` through the ORM in one transaction, and
:func:`generate_events` writes large analytics datasets set-based for benchmarks.
"""

from govern.seeding.fixtures import (
    ENVIRONMENTS,
    Plan,
    domain_namespace,
    load_plan,
    seed_id,
)
from govern.seeding.generate import generate_events
from govern.seeding.schemas import GenerateResult, SeedResult, TableCounts
from govern.seeding.service import apply_plan, seed

__all__ = [
    "ENVIRONMENTS",
    "GenerateResult",
    "Plan",
    "SeedResult",
    "TableCounts",
    "apply_plan",
    "domain_namespace",
    "generate_events",
    "load_plan",
    "seed",
    "seed_id",
]
