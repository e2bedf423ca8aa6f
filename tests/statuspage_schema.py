"""JSON Schema of Statuspage's v2 shape (FACTS.md), strict on the core values."""

from __future__ import annotations

from typing import Any

TIME = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"}
MAYBE_TIME = {"anyOf": [TIME, {"type": "null"}]}
PAGE = {
    "type": "object",
    "required": ["id", "name", "url", "time_zone", "updated_at"],
    "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "url": {"type": "string"},
        "time_zone": {"type": "string"}, "updated_at": TIME,
    },
}  # fmt: skip
STATUS = {
    "type": "object",
    "required": ["indicator", "description"],
    "properties": {
        "indicator": {"enum": ["none", "minor", "major", "critical", "maintenance"]},
        "description": {"type": "string"},
    },
}
COMPONENT = {
    "type": "object",
    "required": ["id", "name", "status", "created_at", "updated_at", "position", "description",
                 "showcase", "start_date", "group_id", "page_id", "group", "only_show_if_degraded"],
    "properties": {
        "status": {"enum": ["operational", "degraded_performance", "partial_outage",
                            "major_outage", "under_maintenance"]},
        "created_at": TIME, "updated_at": TIME, "position": {"type": "integer"},
        "showcase": {"type": "boolean"}, "group": {"type": "boolean"},
    },
}  # fmt: skip
UPDATE = {
    "type": "object",
    "required": ["id", "status", "body", "incident_id", "created_at", "updated_at", "display_at",
                 "affected_components", "deliver_notifications", "custom_tweet", "tweet_id"],
    "properties": {
        "status": {"enum": ["investigating", "identified", "monitoring", "resolved", "postmortem",
                            "scheduled", "in_progress", "verifying", "completed"]},
        "body": {"type": "string"}, "created_at": TIME, "display_at": TIME,
    },
}  # fmt: skip
INCIDENT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "status", "created_at", "updated_at", "monitoring_at",
                 "resolved_at", "impact", "shortlink", "started_at", "page_id", "components",
                 "incident_updates"],
    "properties": {
        "status": {"enum": ["investigating", "identified", "monitoring", "resolved", "postmortem"]},
        "impact": {"enum": ["none", "minor", "major", "critical", "maintenance"]},
        "created_at": TIME, "updated_at": TIME, "resolved_at": MAYBE_TIME, "started_at": TIME,
        "components": {"type": "array", "items": COMPONENT},
        "incident_updates": {"type": "array", "items": UPDATE},
    },
    "patternProperties": {"^x_": {}},
    "additionalProperties": False,
}  # fmt: skip
for key in INCIDENT["required"]:  # every core field is allowed; nothing else but x_ fields
    INCIDENT["properties"].setdefault(key, {})


def wrapped(key: str, item: dict[str, Any]) -> dict[str, Any]:
    """{"page": ..., key: [item, ...]}."""
    return {
        "type": "object",
        "required": ["page", key],
        "properties": {"page": PAGE, key: {"type": "array", "items": item}},
    }


SCHEMAS: dict[str, dict[str, Any]] = {
    "summary.json": {
        "type": "object",
        "required": ["page", "status", "components", "incidents", "scheduled_maintenances"],
        "additionalProperties": False,
        "properties": {
            "page": PAGE, "status": STATUS,
            "components": {"type": "array", "items": COMPONENT},
            "incidents": {"type": "array", "items": INCIDENT},
            "scheduled_maintenances": {"type": "array"},
        },
    },
    "status.json": {"type": "object", "required": ["page", "status"],
                    "properties": {"page": PAGE, "status": STATUS}},
    "components.json": wrapped("components", COMPONENT),
    "incidents.json": wrapped("incidents", INCIDENT),
    "incidents/unresolved.json": wrapped("incidents", INCIDENT),
    "scheduled-maintenances.json": wrapped("scheduled_maintenances", {"type": "object"}),
    "scheduled-maintenances/upcoming.json": wrapped("scheduled_maintenances", {"type": "object"}),
    "scheduled-maintenances/active.json": wrapped("scheduled_maintenances", {"type": "object"}),
}  # fmt: skip
