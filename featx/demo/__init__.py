"""The built-in demo: planted-signal data, extracted, probed and reported end to end."""
