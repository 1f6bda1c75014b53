"""Which modules a real `scelle` process loads: the verifiers' promise that they need no
database is checked on the command itself, not on an import of its module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent

# The database layer: its drivers, the ORM, and our modules that open or describe tables.
DATABASE = (
    "sqlalchemy",
    "sqlmodel",
    "psycopg",
    "sqlite3",
    "_sqlite3",
    "custody.db",
    "custody.dbcopy",
    "custody.ledger",
    "custody.pg_ledger",
    "custody.tables",
    "exporters.tables",
    "requisition.tables",
    "custody.schema",
    "custody.site",
    "requisition.site",
    "requisition.migrations",
)

# What the everyday commands (issue 19) must not load: the ORM and the tables made with it
# (they read through the driver), pydantic (typer's checks of their options: cli.py), and
# msgspec (only `ledger verify` reads entries with it: custody/index_check.py).
ORM = (
    "sqlalchemy",
    "sqlmodel",
    "pydantic",
    "custody.tables",
    "exporters.tables",
    "requisition.tables",
    "msgspec",
)

_PROBE = """
import atexit, json, sys
_OUT = sys.argv[1]
def _dump():
    with open(_OUT, "w") as out:
        json.dump(sorted(sys.modules), out)
atexit.register(_dump)
sys.argv = ["scelle", *sys.argv[2:]]
from cli import main
main()
"""


def loaded_by(
    args: list[str],
    out: Path,
    env: dict[str, str] | None = None,
    watched: tuple[str, ...] = DATABASE,
) -> tuple[int, list[str]]:
    """Run `scelle ARGS` in a new interpreter: its exit code and the `watched` modules
    (and their submodules) it loaded."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(out), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        check=False,
    )
    modules: list[str] = json.loads(out.read_text())
    return done.returncode, [m for m in modules if m in watched or m.split(".")[0] in watched]
