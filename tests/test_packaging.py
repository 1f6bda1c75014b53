"""The installed distribution holds every module and the French catalog: tests run from
the checkout would not notice a subpackage or a data file that `pip install .` leaves out."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_the_wheel_ships_every_module(tmp_path: Path) -> None:
    # pip reads its index configuration from the real home, which the tests hide.
    env = {**os.environ, "HOME": pwd.getpwuid(os.getuid()).pw_dir}
    env.pop("XDG_DATA_HOME", None)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    (wheel,) = tmp_path.glob("scelle-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # The French catalog, compiled: a run speaks French from the wheel alone.
    assert "custody/locale/fr/LC_MESSAGES/scelle.mo" in names
    shipped = {name for name in names if name.endswith(".py")}
    sources = {
        str(p.relative_to(ROOT))
        for top in ("custody", "requisition", "exporters")
        for p in (ROOT / top).rglob("*.py")
    } | {"cli.py"}
    assert sources <= shipped, sorted(sources - shipped)
