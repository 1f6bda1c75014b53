"""Start-up cost: the everyday commands on a site of a million segments, and `scelle --help`,
each beside `python -c pass`.

The commands people type dozens of times a day (issue 19) must answer in under 0.3 s:
`requisition list`, `requisition show`, `footage find` of a 10-minute window, `status`,
`hold list`, `audit` (an auditor's week of one camera) and `ledger show`. The site is
bench/scale.py's footage index (770 cameras of one-minute segments, rows without files)
with one more camera whose store holds ten minutes of real footage, which `footage find`
reads (hash, demux) as it would at a centre; 200 requisitions on that camera, the last
ten still pending, each with its hold; an administrator and an operator. By default a
key agent runs, as on a site doing unattended work: the commands that record an entry
(`footage find`, `audit`) then end with a signed checkpoint over it, as they would there.

Each figure is the median wall time of --runs new processes, after one run that compiles
the bytecode (a Python that may not write it, PYTHONDONTWRITEBYTECODE, would compile every
module at every start: an installed scelle has its bytecode). `scelle --help` must also
be under 0.25 s, in French (the catalog loaded) and in English, and no measured command
may import the ORM (SQLAlchemy, SQLModel).

Usage: python bench/startup.py [--runs 20] [--live 1000000] [--site DIR] [--no-key-agent]
(--site: build the site in DIR, or reuse the one a previous run built there.)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scale import synthesise
from custody.key_agent import alive
from custody.timewindow import parse_window
from exporters.generate import generate_footage
from exporters.index import scan
from requisition import agents
from requisition.cameras import CameraSpec, add_cameras, get_camera
from requisition.requisitions import (
    RequisitionRequest,
    State,
    WindowRequest,
    register,
    set_state,
)

GOAL = 0.3
HELP_GOAL = 0.25
OPERATOR = "bench-operator"
PASSPHRASE = "bench"  # bench/scale.py's site key
ORM = ("sqlalchemy", "sqlmodel")
_PROBE = """
import atexit, sys
atexit.register(lambda: print(sorted(m for m in {orm!r} if m in sys.modules), file=sys.stderr))
sys.argv = ["scelle", *sys.argv[1:]]
from cli import main
main()
"""


def environment(lang: str = "C", **extra: str) -> dict[str, str]:
    """This environment with only LANG choosing the language, bytecode written (see the
    docstring), and `extra` (the site, the login)."""
    skip = ("SCELLE_", "LC_", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    return {**env, "LANG": lang, **extra}


def timed(cmd: list[str], runs: int, env: dict[str, str]) -> tuple[float, float]:
    """The median wall time of `cmd` and the median CPU time it used (user and system:
    what a busy machine inflates least), after one run not timed (it compiles the
    bytecode)."""
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def orm_loaded(args: list[str], env: dict[str, str]) -> list[str]:
    """The ORM modules that `scelle ARGS` imports, run as the console script runs it."""
    probe = _PROBE.format(orm=ORM)
    done = subprocess.run(
        [sys.executable, "-c", probe, *args], check=True, capture_output=True, text=True, env=env
    )
    found: list[str] = json.loads(done.stderr.strip().splitlines()[-1].replace("'", '"'))
    return found


def build(root: Path, live: int, cameras: int, requisitions: int) -> dict[str, Any]:
    """The site in `root` (bench/scale.py's index, then the rest: see the docstring); the
    facts the commands need, also written to `root/bench.json` for a later run."""
    live = -(-live // cameras) * cameras  # at least `live`, as many for each camera
    scale = argparse.Namespace(live=live, cameras=cameras, expire_minutes=1440, history_days=0)
    site, _first, _as_of = synthesise(scale, root)
    home = site.settings.home
    admin = site.login
    agents.bootstrap(site, admin, "Bench Admin", "bench")
    agents.add(site, admin, agents.NewAgent(OPERATOR, "", "operator", "bench", "OPÉRATEUR", "B"))
    camera_id = f"C-{cameras:04d}"
    spec = CameraSpec(
        camera_id, "real footage", "bench", "Lyon", "AP-0", "2030-01-01",
        retention_days="30", store_path=str(root / "store"),
    )  # fmt: skip
    add_cameras(site, [spec.to_camera(home)], admin, "benchmark camera with real footage")
    camera = get_camera(site, camera_id)
    zone = camera.timezone
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    window = (f"{yesterday}T14:00", f"{yesterday}T14:10")
    t = time.perf_counter()
    generate_footage(site, camera, parse_window(*window, zone, 24))
    scan(site, [camera], OPERATOR)
    print(f"10 minutes of real footage for {camera_id} in {time.perf_counter() - t:.0f} s")
    t = time.perf_counter()
    rng = random.Random(19)
    ids = []
    for number in range(requisitions):
        if number == 0:
            start, end = window
        else:  # two minutes of any day of the retention
            day = datetime.combine(date.today(), datetime.min.time())
            begin = day - timedelta(days=rng.randint(1, 28), minutes=rng.randrange(1380))
            start, end = (f"{t:%Y-%m-%dT%H:%M}" for t in (begin, begin + timedelta(minutes=2)))
        request = RequisitionRequest(
            legal_basis="60-1",
            pv_number=f"PV 2026/{number:06d}",
            officer_name="Lieutenant Martin",
            officer_unit="Commissariat central, brigade de sûreté urbaine",
            reason="vol à l'arraché",
            windows=(WindowRequest(camera_id, start, end),),
        )
        ids.append(register(site, request, OPERATOR).requisition.id)
    for done in ids[1:-10]:  # what extractions and hand-overs left: completed
        set_state(site, done, State.COMPLETED)
    print(f"{requisitions} requisitions registered in {time.perf_counter() - t:.0f} s")
    facts = {
        "home": str(home),
        "admin": admin,
        "camera": camera_id,
        "window": window,
        "requisition": ids[0],
        "requisitions": requisitions,
        "live": live,
        "cameras": cameras,
        "week_ago": (date.today() - timedelta(days=7)).isoformat(),
    }
    site.close()
    (root / "passphrase").write_text(PASSPHRASE + "\n")
    (root / "bench.json").write_text(json.dumps(facts))
    return facts


@contextlib.contextmanager
def key_agent(env: dict[str, str], socket: Path) -> Iterator[None]:
    """`scelle keys agent` running for the site, stopped at the end."""
    scelle = shutil.which("scelle")
    assert scelle is not None
    agent = subprocess.Popen(
        [scelle, "keys", "agent"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60  # it unlocks the key first (600,000 PBKDF2 rounds)
        while not alive(socket):
            if agent.poll() is not None or time.monotonic() > deadline:
                assert agent.stderr is not None
                sys.exit(f"the key agent did not start: {agent.stderr.read().decode()}")
            time.sleep(0.2)
        yield
    finally:
        agent.terminate()
        agent.wait(timeout=30)


def everyday(facts: dict[str, Any]) -> list[tuple[str, list[str], str]]:
    """(label, arguments, login) of each command timed."""
    admin, camera = facts["admin"], facts["camera"]
    start, end = facts["window"]
    return [
        ("requisition list", ["requisition", "list"], admin),
        ("requisition show ID", ["requisition", "show", facts["requisition"]], admin),
        (
            "footage find, 10 minutes",
            ["footage", "find", camera, "--from", start, "--to", end],
            OPERATOR,
        ),
        ("status", ["status"], admin),
        ("hold list", ["hold", "list"], admin),
        ("audit, a week of one camera", ["audit", "--camera", camera, "--from", facts["week_ago"]],
         admin),
        ("ledger show", ["ledger", "show"], admin),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--live", type=int, default=1_000_000, help="segments in the index")
    parser.add_argument("--cameras", type=int, default=770)
    parser.add_argument("--requisitions", type=int, default=200)
    parser.add_argument("--site", type=Path, help="build the site here, or reuse it")
    parser.add_argument("--no-key-agent", action="store_true")
    args = parser.parse_args()
    scelle = shutil.which("scelle")
    if scelle is None:
        sys.exit("scelle is not installed in this environment (pip install .)")
    with contextlib.ExitStack() as stack:
        if args.site is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scelle-startup-")))
        else:
            root = args.site.resolve()
        if (root / "bench.json").exists():
            facts = json.loads((root / "bench.json").read_text())
            print(f"reusing the site in {root}")
        else:
            root.mkdir(parents=True, exist_ok=True)
            if any(root.iterdir()):
                sys.exit(f"{root} holds something else than a site this benchmark built")
            facts = build(root, args.live, args.cameras, args.requisitions)
        site = {"SCELLE_HOME": facts["home"]}
        if not args.no_key_agent:
            unlock = {**site, "SCELLE_PASSPHRASE_FILE": str(root / "passphrase")}
            socket = Path(facts["home"]) / "key-agent.sock"
            stack.enter_context(key_agent(environment(**unlock, LOGNAME=facts["admin"]), socket))
        report(scelle, facts, site, args.runs, not args.no_key_agent)


def report(
    scelle: str, facts: dict[str, Any], site: dict[str, str], runs: int, agent: bool
) -> None:
    french = subprocess.run(
        [scelle, "--help"], check=True, capture_output=True, text=True,
        env=environment("fr_FR.UTF-8"),
    ).stdout  # fmt: skip
    if "Utilisation" not in french:
        sys.exit("the French help did not load: the figure would not measure the catalog")
    print(
        f"site: {facts['live']:,} segments in the index and 10 minutes of real footage, "
        f"{facts['cameras'] + 1} cameras, {facts['requisitions']} requisitions and their holds; "
        "key agent " + ("running" if agent else "not running")
    )
    base, base_cpu = timed([sys.executable, "-c", "pass"], runs, environment())
    print(f"median of {runs} runs, wall time (CPU time), beside python -c pass:")
    print(f"  python -c pass {'':27s} {base:.3f} s ({base_cpu:.3f})")
    failed = []
    loaded = {}
    for label, args, login in everyday(facts):
        env = environment(**site, LOGNAME=login)
        took, cpu = timed([scelle, *args], runs, env)
        loaded[label] = orm_loaded(args, env)
        verdict = "PASS" if took < GOAL else "FAIL"
        if verdict == "FAIL" or loaded[label]:
            failed.append(label)
        print(f"  scelle {label:28s}  {took:.3f} s ({cpu:.3f})  +{took - base:.3f} s  "
              f"< {GOAL} s: {verdict}")  # fmt: skip
    for name, lang in (("LANG=fr_FR.UTF-8", "fr_FR.UTF-8"), ("LANG=C", "C")):
        took, cpu = timed([scelle, "--help"], runs, environment(lang))
        verdict = "PASS" if took < HELP_GOAL else "FAIL"
        if verdict == "FAIL":
            failed.append(f"--help, {name}")
        print(f"  scelle --help, {name:21s}  {took:.3f} s ({cpu:.3f})  +{took - base:.3f} s  "
              f"< {HELP_GOAL} s: {verdict}")  # fmt: skip
    loaded["--help"] = orm_loaded(["--help"], environment())
    importing = sorted(label for label, modules in loaded.items() if modules)
    print(f"commands importing the ORM (SQLAlchemy, SQLModel): {importing or 'none'}")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
