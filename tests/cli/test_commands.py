"""Every command function has a subcommand, and every help text is one line with a full stop."""

from __future__ import annotations

import argparse
import inspect
import subprocess
import sys

import pytest

from govern import cli, command


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _leaves(sub, (*path, name))
    fn = parser.get_default("fn")
    if fn is not None:
        yield path, fn, parser


LEAVES = list(_leaves(cli.build_parser()))
COMMANDS = [
    fn
    for name, fn in inspect.getmembers(command, inspect.isfunction)
    if fn.__module__ == command.__name__ and not name.startswith("_") and name != "generated_docs"
]


def test_every_command_function_has_a_subcommand() -> None:
    wired = {fn for _, fn, _ in LEAVES}
    missing = [fn.__name__ for fn in COMMANDS if fn not in wired]
    assert missing == []


@pytest.mark.parametrize("fn", COMMANDS, ids=lambda f: f.__name__)
def test_help_is_one_line_ending_with_full_stop(fn) -> None:  # type: ignore[no-untyped-def]
    first = (fn.__doc__ or "").strip().splitlines()[0]
    assert first.endswith(".")
    assert len(first) <= 100


@pytest.mark.parametrize(
    ("path", "fn", "parser"), LEAVES, ids=lambda x: " ".join(x) if isinstance(x, tuple) else ""
)
def test_every_subcommand_takes_json(path, fn, parser) -> None:  # type: ignore[no-untyped-def]
    assert "--json" in parser.format_help()


def test_python_dash_m_matches_console_script(govern_env) -> None:  # type: ignore[no-untyped-def]
    out = subprocess.run(
        [sys.executable, "-m", "govern", "--help"], capture_output=True, text=True, check=True
    )
    assert "migrate" in out.stdout


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("govern ")
