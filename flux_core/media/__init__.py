"""Where an image lands on disk: checked, stored by content hash, thumbnailed, its recipe embedded."""
