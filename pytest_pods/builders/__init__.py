"""Image builders (the Dockerfile builder lands with its own issue)."""
