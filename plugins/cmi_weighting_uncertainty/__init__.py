"""cmi_weighting_uncertainty plugin (work in progress)."""
