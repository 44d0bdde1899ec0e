"""Alembic's entry point for govern's migrations; the logic is in govern.migrations.environment."""

from alembic import context

from govern.migrations.environment import run

run(context)
