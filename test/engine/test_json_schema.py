"""The JSON-schema subset validator."""

import pytest

from shadowhound_llm_bench.core.settings.json_schema import SchemaError, check_schema, validate

SCHEMA = {
    "type": "object",
    "required": ["name", "speed", "tags"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "speed": {"type": "number", "minimum": 0, "maximum": 2},
        "mode": {"enum": ["fast", "slow"]},
        "count": {"type": "integer"},
        "tags": {"type": "array", "minItems": 1, "items": {"type": "string"}},
    },
}


def test_valid_instance_has_no_errors():
    assert validate({"name": "a", "speed": 1.5, "tags": ["x"], "mode": "fast"}, SCHEMA) == []


def test_each_violation_is_reported_with_its_path():
    errors = validate({"name": "", "speed": 3, "tags": [1], "mode": "warp", "count": True,
                       "extra": 1}, SCHEMA)
    text = "\n".join(errors)
    assert "$.name: shorter than 1" in text
    assert "$.speed: 3 is above the maximum 2" in text
    assert "$.tags[0]: expected string" in text
    assert "$.mode: 'warp' is not one of" in text
    assert "$.count: expected integer, got bool" in text
    assert "$: unexpected property 'extra'" in text


def test_missing_required_and_wrong_top_type():
    assert validate({}, SCHEMA)[0] == "$: missing required property 'name'"
    assert validate([], SCHEMA) == ["$: expected object, got list"]


def test_check_schema_rejects_unsupported_keywords():
    with pytest.raises(SchemaError, match="1 unsupported schema keyword"):
        check_schema({"type": "string", "pattern": "x"})
    with pytest.raises(SchemaError, match="unknown type"):
        check_schema({"type": "float"})
