# A relative WORKDIR after one that is a symlink, and COPY to ./ and to a relative path.
# expect: app v2\nmarker
ARG DISTROLESS
FROM ${DISTROLESS}
# (as root: buildah creates a WORKDIR only when a later step writes into it, as root, where
# ocibuild and BuildKit create it at once as the USER; the base's USER is nonroot)
USER root
COPY busybox /sbin/
WORKDIR /lib
WORKDIR sub
COPY app.txt ./
COPY marker.txt deeper/
USER nonroot
ENTRYPOINT ["/sbin/busybox", "cat", "/usr/lib/sub/app.txt", "/lib/sub/deeper/marker.txt"]
