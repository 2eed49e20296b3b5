#!/usr/bin/env python3
"""A stand-in for Django's manage.py: collectstatic and a deploy check, same layout."""
import os
import shutil
import sys

import mysite.settings as settings


def collectstatic(argv):
    if "--clear" in argv and os.path.isdir(settings.STATIC_ROOT):
        shutil.rmtree(settings.STATIC_ROOT)
    n = 0
    for d in settings.STATICFILES_DIRS:
        for root, _dirs, files in sorted(os.walk(d)):
            for f in sorted(files):
                src = os.path.join(root, f)
                dst = os.path.join(settings.STATIC_ROOT, os.path.relpath(src, d))
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copyfile(src, dst)
                n += 1
    with open(os.path.join(settings.STATIC_ROOT, "staticfiles.count"), "w") as out:
        out.write(f"{n}\n")
    print(f"{n} static files copied to '{settings.STATIC_ROOT}'.")


def check_deploy():
    import pwd

    import hello_wheel

    with open(os.path.join(settings.STATIC_ROOT, "staticfiles.count")) as f:
        n = f.read().strip()
    print(
        f"collected {n} static files into {settings.STATIC_ROOT}; {hello_wheel.greet()}; "
        f"user {pwd.getpwuid(os.getuid()).pw_name}"
    )


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "help"
    if cmd == "collectstatic":
        collectstatic(sys.argv[2:])
    elif cmd == "check-deploy":
        check_deploy()
    else:
        sys.exit(f"unknown command {cmd}")
