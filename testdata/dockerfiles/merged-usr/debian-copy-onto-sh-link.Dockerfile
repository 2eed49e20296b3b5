# A file copied onto a path that is a symlink to a file (/usr/bin/sh -> dash) replaces the link
# itself; the link's target is untouched.
# expect: marker\nok
ARG DEBIAN
FROM ${DEBIAN}
COPY marker.txt /bin/sh
CMD ["/bin/dash", "-c", "cat /usr/bin/sh; test ! -L /usr/bin/sh && test -x /usr/bin/dash && echo ok"]
