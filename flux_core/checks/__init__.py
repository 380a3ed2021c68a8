"""Automatic checks on every image: text, palette, similarity (issue 16)."""
