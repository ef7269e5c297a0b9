"""
A small JSON-schema subset: type, required, properties, items, enum, minimum/maximum.

Also minItems/maxItems, minLength/maxLength and additionalProperties: false (plan schemas).
"""

from __future__ import annotations

from typing import Any, Dict, List

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}

_KNOWN_KEYWORDS = {
    "type", "required", "properties", "items", "enum", "minimum", "maximum", "minItems",
    "maxItems", "minLength", "maxLength", "additionalProperties", "description", "title",
}


class SchemaError(ValueError):
    """The schema itself uses something this subset does not understand."""


def check_schema(schema: Any, path: str = "$") -> None:
    """Raise SchemaError when a schema uses keywords or types outside the subset."""
    if not isinstance(schema, dict):
        raise SchemaError(f"{path}: a schema must be a mapping")
    # Messages name the place and the rule, never a word of the schema (it comes from a file).
    unknown = [key for key in schema if key not in _KNOWN_KEYWORDS]
    if unknown:
        raise SchemaError(f"{path}: {len(unknown)} unsupported schema keyword(s); known: "
                          f"{', '.join(sorted(_KNOWN_KEYWORDS))}")
    types = schema.get("type")
    if types is not None and not isinstance(types, (str, list)):
        raise SchemaError(f"{path}: 'type' must be a type name or a list of them")
    for name in ([types] if isinstance(types, str) else (types or [])):
        if not isinstance(name, str) or name not in _TYPES:
            raise SchemaError(f"{path}: unknown type; known: {', '.join(_TYPES)}")
    for key in ("minimum", "maximum"):
        if key in schema and (isinstance(schema[key], bool)
                              or not isinstance(schema[key], (int, float))):
            raise SchemaError(f"{path}: '{key}' must be a number")
    for key in ("minItems", "maxItems", "minLength", "maxLength"):
        if key in schema and (isinstance(schema[key], bool) or not isinstance(schema[key], int)
                              or schema[key] < 0):
            raise SchemaError(f"{path}: '{key}' must be a whole number >= 0")
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(k, str) for k in required):
        raise SchemaError(f"{path}: 'required' must be a list of property names")
    if "enum" in schema and not isinstance(schema["enum"], list):
        raise SchemaError(f"{path}: 'enum' must be a list")
    if "additionalProperties" in schema and not isinstance(schema["additionalProperties"], bool):
        raise SchemaError(f"{path}: 'additionalProperties' must be true or false")
    properties = schema.get("properties") or {}
    if not isinstance(properties, dict):
        raise SchemaError(f"{path}: 'properties' must be a mapping")
    for position, sub in enumerate(properties.values(), start=1):
        check_schema(sub, f"{path}.properties#{position}")
    if "items" in schema:
        check_schema(schema["items"], f"{path}[]")


def validate(instance: Any, schema: Dict[str, Any], path: str = "$") -> List[str]:
    """Every violation of the schema, as readable messages; an empty list means valid."""
    errors: List[str] = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_TYPES[n](instance) for n in names):
            errors.append(f"{path}: expected {' or '.join(names)}, got {type(instance).__name__}")
            return errors
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{path}: {instance!r} is not one of {schema['enum']!r}")
    if _TYPES["number"](instance):
        if "minimum" in schema and instance < schema["minimum"]:
            errors.append(f"{path}: {instance} is below the minimum {schema['minimum']}")
        if "maximum" in schema and instance > schema["maximum"]:
            errors.append(f"{path}: {instance} is above the maximum {schema['maximum']}")
    if isinstance(instance, str):
        if "minLength" in schema and len(instance) < schema["minLength"]:
            errors.append(f"{path}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(instance) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']} characters")
    if isinstance(instance, dict):
        for key in schema.get("required", []):
            if key not in instance:
                errors.append(f"{path}: missing required property {key!r}")
        props = schema.get("properties") or {}
        for key, value in instance.items():
            if key in props:
                errors.extend(validate(value, props[key], f"{path}.{key}"))
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}: unexpected property {key!r}")
    if isinstance(instance, list):
        if "minItems" in schema and len(instance) < schema["minItems"]:
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(instance) > schema["maxItems"]:
            errors.append(f"{path}: more than {schema['maxItems']} items")
        if "items" in schema:
            for index, item in enumerate(instance):
                errors.extend(validate(item, schema["items"], f"{path}[{index}]"))
    return errors
