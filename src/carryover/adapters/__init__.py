"""adapters layer (see DESIGN section 3)."""
