"""Jinja2 templates of the legal documents (loaded with importlib.resources)."""
