"""Footage stores: one module per recorder layout, chosen by `StoreKind`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import assert_never

from exporters.stores.base import FootageStore, SegmentName
from exporters.stores.frigate import FrigateStore
from exporters.stores.scelle_dir import ScelleDirStore
from exporters.stores.template import NameClock, TemplateStore

__all__ = ["FootageStore", "NameClock", "SegmentName", "StoreKind", "open_store"]


class StoreKind(StrEnum):
    SCELLE = "scelle"  # scelle's own segment directory
    FRIGATE = "frigate"  # Frigate NVR's recordings/ layout
    TEMPLATE = "template"  # any recorder's layout, described by a path template


def open_store(
    kind: StoreKind, root: Path, template: str = "", clock: str = "utc", zone: str = "UTC"
) -> FootageStore:
    """The store; `template`, `clock` (names in UTC or local time) and `zone` are read
    only by a TEMPLATE store (the other layouts fix them)."""
    if kind is StoreKind.SCELLE:
        return ScelleDirStore(root)
    if kind is StoreKind.FRIGATE:
        return FrigateStore(root)
    if kind is StoreKind.TEMPLATE:
        return TemplateStore(root, template, NameClock(clock), zone)
    assert_never(kind)
