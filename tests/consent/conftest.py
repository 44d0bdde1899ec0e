"""A migrated database with a small consent catalog, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from govern import consent
from govern.db import create_engine, transaction

CATALOG = {
    "notices": [
        {
            "key": "privacy",
            "title": "Privacy notice",
            "default_locale": "en",
            "controller": "Example Shop Ltd",
            "controller_contact": "Data Protection Officer",
            "controller_email": "dpo@example.com",
            "controller_phone": "+44 20 0000 0000",
            "controller_address": "1 High Street, London",
            "policy_url": "https://example.com/privacy",
            "versions": [
                {
                    "texts": {
                        "en": {"title": "Privacy", "body": "We use your data for ..."},
                        "fr": {"title": "Confidentialité", "body": "Nous utilisons ..."},
                        "de-AT": {"title": "Datenschutz", "body": "Wir verwenden ..."},
                    }
                }
            ],
        }
    ],
    "purposes": [
        {
            "key": "marketing.email",
            "name": "E-mail newsletter",
            "legal_basis": "Consent",
            "data_categories": ["user.contact.email"],
            "retention_days": 730,
            "consent_validity_days": 365,
            "notice": "privacy",
        },
        {
            "key": "ads.sale",
            "name": "Sale of data to ad partners",
            "legal_basis": "Consent",
            "data_categories": ["user.behavior.browsing_history"],
            "sale_or_sharing": True,
            "third_parties": ["AdCo"],
            "notice": "privacy",
        },
        {
            "key": "analytics.share",
            "name": "Sharing analytics with partners",
            "legal_basis": "LegitimateInterest",
            "data_categories": ["user.device.cookie_id"],
            "sale_or_sharing": True,
            "notice": "privacy",
        },
    ],
}


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    eng = create_engine(migrated_url)
    with transaction(eng) as session:
        consent.load_catalog(session, consent.Catalog.model_validate(CATALOG))
    yield eng
    eng.dispose()
