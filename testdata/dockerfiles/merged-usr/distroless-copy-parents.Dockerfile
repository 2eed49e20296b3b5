# COPY --parents keeps the source paths, which begin with bin/ and lib/ here: they land in
# /usr/bin and /usr/lib. distroless-copy-parents.buildah.Dockerfile spells the paths out.
# expect: #!/bin/sh\necho parents-tool\ndemo library
ARG DISTROLESS
FROM ${DISTROLESS}
COPY busybox /usr/local/bin/
COPY --parents bin/parents-tool lib/demo/libdemo.so.1 /
COPY --parents usr/local/bin/local-tool /
ENTRYPOINT ["/usr/local/bin/busybox", "cat", "/usr/bin/parents-tool", "/lib/demo/libdemo.so.1"]
