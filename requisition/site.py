"""Opening and creating a site with the schema this scelle speaks (requisition/
migrations.py): what every command, the demo and the tests use."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from custody import site as custody_site
from custody.config import Settings
from custody.site import Site
from requisition import migrations

if TYPE_CHECKING:
    from custody.note import Checkpoint


def open_site(settings: Settings) -> Site:
    """An initialised site at the current schema (DatabaseError otherwise)."""
    return custody_site.open_site(settings, migrations.require_current)


def init_site(
    settings: Settings, passphrase: bytes, then: Callable[[Site], object] | None = None
) -> tuple[Site, Checkpoint]:
    """Create a site: database at the current schema, key, genesis entry, checkpoint."""
    return custody_site.init_site(settings, passphrase, migrations.upgrade, then)
