# A directory's contents copied into /bin/ and /sbin/ (both symlinks into /usr).
# expect: #!/bin/sh\necho tool
ARG DISTROLESS
FROM ${DISTROLESS}
COPY busybox /sbin/
COPY tree/bin/ /bin/
COPY tree/ /sbin/tree/
ENTRYPOINT ["/sbin/busybox", "cat", "/usr/bin/tool"]
