# WORKDIR below a symlinked directory: created in /usr/bin, relative COPY lands there.
# expect: /usr/bin/work
ARG DISTROLESS
FROM ${DISTROLESS}
# (as root: buildah creates a WORKDIR only when a later step writes into it, as root, where
# ocibuild and BuildKit create it at once as the USER; the base's USER is nonroot)
USER root
COPY busybox /bin/
WORKDIR /bin/work
COPY app.txt .
USER nonroot
ENTRYPOINT ["/bin/busybox", "sh", "-c", "cd /bin/work && test -f app.txt && pwd -P"]
