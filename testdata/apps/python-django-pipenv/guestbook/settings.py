"""Settings of the guestbook project (entries live in memory; PostgreSQL through psycopg2 when POSTGRES_HOST is set)."""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-test-key-only")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.staticfiles", "entries"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "guestbook.urls"
WSGI_APPLICATION = "guestbook.wsgi.application"
DATABASES = {}
if os.environ.get("POSTGRES_HOST"):
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ["POSTGRES_HOST"],
        "NAME": os.environ.get("POSTGRES_DB", "guestbook"),
        "USER": os.environ.get("POSTGRES_USER", "guestbook"),
        "PASSWORD": os.environ.get("POSTGRES_PASSWORD", ""),
    }
USE_TZ = True
STATIC_URL = "static/"
# `manage.py collectstatic` gathers every app's static/ here for the web server to serve
STATIC_ROOT = BASE_DIR / "staticfiles"
