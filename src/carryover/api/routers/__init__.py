"""One router per resource; each parses, calls a service and renders (DESIGN 3)."""
