"""Footage stores: one module per recorder layout, chosen by `StoreKind`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import assert_never

from exporters.stores.base import FootageStore, SegmentName
from exporters.stores.frigate import FrigateStore
from exporters.stores.scelle_dir import ScelleDirStore

__all__ = ["FootageStore", "SegmentName", "StoreKind", "open_store"]


class StoreKind(StrEnum):
    SCELLE = "scelle"  # scelle's own segment directory
    FRIGATE = "frigate"  # Frigate NVR's recordings/ layout


def open_store(kind: StoreKind, root: Path) -> FootageStore:
    if kind is StoreKind.SCELLE:
        return ScelleDirStore(root)
    if kind is StoreKind.FRIGATE:
        return FrigateStore(root)
    assert_never(kind)
