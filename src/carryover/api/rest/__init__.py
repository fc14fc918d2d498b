"""One router per resource of the REST API (docs/api.md); each parses, calls a service and
renders."""
