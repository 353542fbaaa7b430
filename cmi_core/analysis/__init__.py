"""Reading finished runs for people: ``cmi compare`` statistics, ``cmi report`` plots,
the OOF score of ``cmi ensemble``. Imports runs and predict; nothing imports it but the CLI."""
