import os

import django
from django.http import HttpResponse

SIGNED: list[str] = []


def index(request):
    return HttpResponse(
        f"guestbook on django {django.get_version()} as uid {os.getuid()}: {len(SIGNED)} entries\n",
        content_type="text/plain",
    )


def sign(request, name):
    SIGNED.append(name)
    return HttpResponse(f"thanks, {name}\n", content_type="text/plain")
