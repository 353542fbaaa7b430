"""cmi_logger_csv plugin (work in progress)."""
