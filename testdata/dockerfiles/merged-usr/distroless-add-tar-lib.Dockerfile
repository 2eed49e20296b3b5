# ADD of a local archive into /lib/ (a symlink): extracted under /usr/lib.
# expect: #!/bin/sh\necho archived
ARG DISTROLESS
FROM ${DISTROLESS}
COPY busybox /bin/
ADD tools.tar /lib/tools/
ENTRYPOINT ["/bin/busybox", "cat", "/usr/lib/tools/bin/archived-tool"]
