"""api layer (see DESIGN section 3)."""
