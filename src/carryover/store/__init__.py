"""store layer (see DESIGN section 3)."""
