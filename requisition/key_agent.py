"""`scelle keys agent`: the jobs the key agent does for unattended work
(custody/key_agent.py holds the socket and the rules of who may ask).

- "checkpoint": sign the ledger's current head, if it extends every earlier checkpoint
  and the last one this agent signed;
- "certificates": the destruction certificate of every purge run that lacks one, made
  from what the run recorded, so that the nightly purge needs no passphrase.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from custody import checkpoints
from custody.errors import ScelleError
from custody.i18n import _
from custody.key_agent import AgentServer, StopAgent, answered, ask, undumpable
from custody.note import Checkpoint
from custody.site import Site
from exporters.documents import PaperSigner
from requisition.destruction import certificate
from requisition.purge import PurgeReport, uncertified


@dataclass
class _Agent:
    site: Site
    papers: PaperSigner
    log: Callable[[str], None]
    last: Checkpoint | None = None  # held in memory only: a restore cannot take it back

    def checkpoint(self) -> dict[str, Any]:
        cp, note = checkpoints.sign(
            self.site.db, self.site.settings.checkpoint_file, self.papers.signer, self.last
        )
        self.last = cp
        self.log(_("checkpoint of {size} entries signed").format(size=cp.size))
        return {"note": note, "size": cp.size}

    def certificates(self) -> dict[str, Any]:
        made = []
        with self.site.db.exclusive("purge", _("a purge is running: it makes its own")):
            for run in uncertified(self.site):
                made.append(str(certificate(self.site, run, self.papers.signer, self.papers.pdf)))
                self.log(_("destruction certificate {path}").format(path=made[-1]))
        return {"certificates": made}


def serve_agent(site: Site, papers: PaperSigner, log: Callable[[str], None]) -> None:
    """Answer on the site's socket until SIGTERM, SIGINT or SIGHUP (each after the job under
    way); the tail left before it started is covered first."""
    undumpable()
    agent = _Agent(site, papers, log)
    path = site.settings.key_agent_socket
    server = AgentServer(
        path, {"checkpoint": agent.checkpoint, "certificates": agent.certificates}, log
    )
    stops = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {s: signal.signal(s, lambda _sig, _frame: server.stop_soon()) for s in stops}
    try:
        agent.checkpoint()
        log(
            _("key agent of site {name} listening on {path}").format(
                name=site.identity().key_name, path=path
            )
        )
        server.serve_forever()
    except (StopAgent, KeyboardInterrupt):
        pass
    finally:
        server.server_close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        log(_("key agent stopped"))


def certificates_by_agent(site: Site, report: PurgeReport) -> None:
    """After an unattended purge: have the agent make the certificates. If it cannot, the
    run is partial (a destruction without its certificate), said among its failures; the
    next purge with the key or the agent makes them."""
    try:
        made = answered(ask(site.settings.key_agent_socket, "certificates"), "certificates", list)
    except ScelleError as exc:  # the purge's own report is printed all the same
        if uncertified(site):
            report.failures.append(
                _("destruction certificate not made ({why}): the next purge makes it").format(
                    why=exc.message
                )
            )
        return
    report.certificates += [Path(str(p)) for p in made]
