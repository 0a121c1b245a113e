"""OpenAPI 3.0 schemas as plain JSON Schema, for `jsonschema` to validate answers against.

OpenAPI 3.0 writes "may be null" as ``nullable: true`` beside ``type``; JSON Schema (which
`jsonschema` implements) spells it ``type: [..., "null"]``. `json_schema` rewrites the one into
the other, recursively; everything else passes through.
"""

from __future__ import annotations

from typing import Any


def json_schema(schema: Any) -> Any:
    if isinstance(schema, list):
        return [json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: json_schema(value) for key, value in schema.items() if key != "nullable"}
    if schema.get("nullable") and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"]
    return out
