import os

import django
import psycopg2  # the PostgreSQL driver: a C extension linked against libpq
from django.http import HttpResponse

SIGNED: list[str] = []


def index(request):
    return HttpResponse(
        f"guestbook on django {django.get_version()} with libpq {psycopg2.__libpq_version__} "
        f"as uid {os.getuid()}: {len(SIGNED)} entries\n",
        content_type="text/plain",
    )


def sign(request, name):
    SIGNED.append(name)
    return HttpResponse(f"thanks, {name}\n", content_type="text/plain")
