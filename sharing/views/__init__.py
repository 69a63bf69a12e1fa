"""Thin views, one module per subject."""
