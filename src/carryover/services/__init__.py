"""services layer (see DESIGN section 3)."""
