"""Bench-only settings: the portal's own, with the URLconf that adds the bare redirect view."""

from s3portal.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls_bare"
