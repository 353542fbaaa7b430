"""The run directory on disk: its layout, its records, and reading it back."""
