"""domain layer (see DESIGN section 3)."""
