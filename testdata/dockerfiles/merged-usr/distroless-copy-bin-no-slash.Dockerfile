# A destination without a trailing slash that is a symlink to a directory is that directory.
# expect: /usr/bin/busybox
ARG DISTROLESS
FROM ${DISTROLESS}
COPY busybox /bin
ENTRYPOINT ["/bin/busybox", "realpath", "/bin/busybox"]
