"""The plugin registry: entry-point discovery and one registry per plugin kind."""
