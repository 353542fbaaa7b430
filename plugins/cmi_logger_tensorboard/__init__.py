"""cmi_logger_tensorboard plugin (work in progress)."""
