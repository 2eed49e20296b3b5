# /usr/local/bin is a plain directory path (created when missing); files copied beside busybox.
# expect: #!/bin/sh\necho local
ARG DISTROLESS
FROM ${DISTROLESS}
COPY busybox usr/local/bin/local-tool /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/busybox", "cat", "/usr/local/bin/local-tool"]
