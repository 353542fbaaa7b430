"""cmi_weighting_none plugin (work in progress)."""
