"""RFC 8785 canonical JSON: the exact bytes we hash, sign and store.

`rfc8785` accepts floats (and silently turns `1.0` into `1`), so a signed record could
change meaning on a round trip; our records refuse floats outright.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import rfc8785

from custody.errors import InputError

JSONValue = None | bool | int | str | list["JSONValue"] | dict[str, "JSONValue"]


def _refuse_floats(value: Any, path: str) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return
    if isinstance(value, float):
        raise InputError(f"{path}: floats are not allowed in signed records ({value!r})")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InputError(f"{path}: object keys must be strings ({key!r})")
            _refuse_floats(item, f"{path}.{key}")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _refuse_floats(item, f"{path}[{i}]")
        return
    raise InputError(f"{path}: {type(value).__name__} cannot go into a signed record")


def canonical_bytes(value: Mapping[str, Any]) -> bytes:
    """Serialise `value` as RFC 8785 bytes, refusing floats and non-JSON types."""
    _refuse_floats(value, "$")
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:  # integers beyond 2**53, bad strings
        raise InputError(f"cannot canonicalise record: {exc}") from exc


def parse_canonical(data: bytes) -> dict[str, Any]:
    """Parse bytes that must already be canonical; raises ValueError if they are not."""
    value = json.loads(data)
    if not isinstance(value, dict) or rfc8785.dumps(value) != data:
        raise ValueError("not canonical JSON")
    return value
