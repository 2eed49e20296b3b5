"""tally: counts words and lines."""
