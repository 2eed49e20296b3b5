# COPY into /bin/ of a Debian base with a shell: /bin/sh and every program in /usr/bin stay
# reachable through /bin, so the RUN after the COPY still finds its shell.
# expect: #!/bin/sh\necho tool\nsh still here
ARG DEBIAN
FROM ${DEBIAN}
COPY tree/bin/tool /bin/
COPY conf/ /lib/conf/
RUN test -L /bin && test -x /bin/sh && cat /usr/bin/tool > /tool-seen && ls /usr/lib/conf/extra/more.conf
CMD ["/bin/sh", "-c", "cat /tool-seen; echo sh still here"]
