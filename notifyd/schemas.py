"""Access to the JSON Schemas shipped with notifyd."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema


def schema_directory() -> Path:
    """The installed wheel carries ``notifyd/schemas``; a source checkout has ``schemas/``."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "schemas", package.parent / "schemas"):
        if (candidate / "notifyd.schema.json").is_file():
            return candidate
    raise FileNotFoundError(f"notifyd's JSON Schemas are missing (looked in {package}/schemas and ../schemas)")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema ``name`` (e.g. ``notifyd`` or ``notification``)."""
    with open(schema_directory() / f"{name}.schema.json", encoding="utf-8") as file:
        return json.load(file)


@cache
def validator(name: str) -> jsonschema.protocols.Validator:
    """A reusable validator for the schema ``name``."""
    # Imported here: a channel process needs it only to word a rejected record, and it
    # costs ~4 MiB of every channel process's memory (the hot path uses jsonschema-rs).
    import jsonschema

    schema = load_schema(name)
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
