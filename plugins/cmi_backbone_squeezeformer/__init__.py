"""cmi_backbone_squeezeformer plugin (work in progress)."""
