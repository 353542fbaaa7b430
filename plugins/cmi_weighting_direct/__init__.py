"""cmi_weighting_direct plugin (work in progress)."""
