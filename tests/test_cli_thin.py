"""cli.py parses, prompts, prints and chooses the exit code: it runs no SQL and appends
nothing to the ledger (the library records what it does, so that a program calling it
leaves the same trail), and what it prints comes from the library's renderers."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import ADMIN, SiteEnv, run_cli

ROOT = Path(__file__).parent.parent
CLI = ROOT / "cli.py"

_SQL = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|CREATE)\s")  # statements, not prose
_CURSOR = {"execute", "executemany", "executescript", "fetchone", "fetchall", "fetchmany"}
_APPEND = {"append", "append_in", "append_many"}


def _receiver(call: ast.Call) -> str:
    """The text of what a method is called on: `site.ledger` in `site.ledger.append()`."""
    func = call.func
    return ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""


def trespasses(source: str) -> list[str]:
    """Every place where `source` runs SQL, opens a raw cursor, or writes to the ledger."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _SQL.match(node.value):
                found.append(f"line {line}: SQL {node.value[:40]!r}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name, receiver = node.func.attr, _receiver(node)
            if name in _CURSOR:
                found.append(f"line {line}: {receiver}.{name}()")
            elif name in ("read", "write") and re.search(r"(^|\.)db$", receiver):
                found.append(f"line {line}: a raw cursor from {receiver}.{name}()")
            elif name in _APPEND and (name != "append" or "ledger" in receiver.lower()):
                found.append(f"line {line}: ledger append {receiver}.{name}()")
        elif isinstance(node, ast.Name) and node.id == "Record":
            found.append(f"line {line}: builds a ledger Record")
        elif isinstance(node, ast.ImportFrom) and any(a.name == "Record" for a in node.names):
            found.append(f"line {line}: imports the ledger Record")
    return found


def test_cli_runs_no_sql_and_appends_nothing_to_the_ledger() -> None:
    assert trespasses(CLI.read_text()) == []


@pytest.mark.parametrize(
    "planted",
    [
        'Q = "SELECT body FROM ledger_entry"\n',
        'def f(n):\n    return f"  DELETE FROM hold WHERE id = {n}"\n',
        "def f(cur):\n    cur.execute(q)\n",
        "def f(cur):\n    return cur.fetchone()\n",
        "def f(site):\n    with site.db.read() as cur:\n        pass\n",
        "def f(site, record):\n    site.ledger.append(site.login, record)\n",
        "def f(ledger, cur):\n    ledger.append_in(cur, 'op', [])\n",
        "def f(db, records):\n    Ledger(db).append_many('op', records)\n",
        "def f():\n    from custody.entry import Record\n",
        "def f(site):\n    return make(Record)\n",
    ],
)
def test_the_check_finds_each_kind_added_back(planted: str) -> None:
    """The check above must be able to fail: each trespass planted in cli.py is found."""
    assert trespasses(CLI.read_text() + "\n\n" + planted) != []


def test_ordinary_lists_and_prose_are_not_trespasses() -> None:
    source = 'def f(lines):\n    lines.append("Select the camera")\n    return "CREATED"\n'
    assert trespasses(source) == []


def test_cli_prints_what_renderers_return_and_builds_no_json_itself() -> None:
    """JSON, CSV and tables are built in the library (custody/render.py and its kin):
    cli.py neither imports json nor csv."""
    modules = {
        alias.name
        for node in ast.walk(ast.parse(CLI.read_text()))
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert not {"json", "csv"} & modules


def test_commands_print_exactly_what_the_renderers_return(site_env: SiteEnv) -> None:
    """Tests (and other programs) get a command's text from the library, byte for byte."""
    from custody.audit import AuditFilter, query
    from custody.entry import decode_entry
    from custody.render import audit_csv, audit_lines, entry_lines, json_text, key_lines
    from requisition.agents import list_all
    from requisition.render import agent_lines, agents_json

    site, env = site_env.site, site_env.env_as(ADMIN)

    def printed(*args: str) -> str:
        result = run_cli(list(args), env=env)
        assert result.exit_code == 0, result.stderr
        return result.stdout

    def text(lines: list[str]) -> str:
        return "".join(f"{line}\n" for line in lines)

    assert printed("agent", "list") == text(agent_lines(list_all(site)))
    assert printed("agent", "list", "--json") == agents_json(list_all(site)) + "\n"
    key_file = site_env.settings.public_key_file
    assert printed("keys", "show", "--pem") == text(key_lines(site.identity(), key_file, "pem"))
    assert printed("keys", "show") == text(key_lines(site.identity(), key_file, None))
    entries = [decode_entry(body) for _, body in site.ledger.entries()]
    assert printed("ledger", "show", "--json") == json_text(entries) + "\n"
    zone = site_env.settings.timezone
    assert printed("ledger", "show") == text(entry_lines(entries, detailed=False, zone=zone))
    # An audit shows the entries before its own, which it appends after answering.
    zone, wanted = site_env.settings.timezone, AuditFilter(agent=ADMIN)
    rows = query(site.db, wanted)
    assert printed("audit", "--agent", ADMIN) == text(audit_lines(rows, zone))
    rows = query(site.db, wanted)
    csv_text = audit_csv(rows, zone).replace("\r\n", "\n")  # the runner reads CRLF as LF
    assert printed("audit", "--agent", ADMIN, "--csv") == csv_text
