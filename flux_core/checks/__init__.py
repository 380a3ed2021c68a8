"""Automatic checks on every image: what its prompt asks for, and whether the image shows it."""
