"""WSGI entry point (gunicorn s3portal.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "s3portal.settings")
application = get_wsgi_application()
