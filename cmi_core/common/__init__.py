"""Process-wide plumbing every layer uses: atomic file writes, stop signals, console lines."""
