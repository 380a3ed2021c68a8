"""Automatic checks of every image against its own prompt (issue 16)."""
