"""Public helpers for host services' own tests: keyrings that need no database or KEK.

::

    from govern.testing import memory_keyring

    engine = govern.create_engine("sqlite:///test.db")
    govern.migrations.upgrade(...)
    govern.keys.bind_keyring(engine, memory_keyring())   # protected columns now work
"""

from __future__ import annotations

from govern.crypto.keyring import Keyring, StaticKeyProvider, new_key


def memory_keyring(*, data_keys: int = 1, kek: bytes | None = None) -> Keyring:
    """A keyring with a random KEK, ``data_keys`` random data keys (the last one primary,
    ids from 1) and a random blind-index key, held in memory only.

    Values it seals are lost with it: use it in tests, never for real data. ``govern scan
    encryption`` reports its key ids as unknown, since they are not in ``data_keys``.
    """
    keyring = Keyring(StaticKeyProvider(kek or new_key()))
    for key_id in range(1, data_keys + 1):
        keyring.add_data_key(key_id, new_key(), primary=key_id == data_keys)
    keyring.set_blind_root(new_key())
    return keyring
