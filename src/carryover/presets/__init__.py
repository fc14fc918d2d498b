"""Plan presets shipped with carryover (YAML plan files; see docs/presets.md)."""
