# distroless-copy-parents.Dockerfile without --parents (buildah 1.28 lacks it).
ARG DISTROLESS
FROM ${DISTROLESS}
COPY busybox /usr/local/bin/
COPY bin/parents-tool /bin/
COPY lib/demo/libdemo.so.1 /lib/demo/
COPY usr/local/bin/local-tool /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/busybox", "cat", "/usr/bin/parents-tool", "/lib/demo/libdemo.so.1"]
