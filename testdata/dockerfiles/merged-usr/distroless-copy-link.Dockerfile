# COPY --link: a layer that does not depend on the layers below must still follow the base's
# bin -> usr/bin (BuildKit's --link does not; ocibuild resolves against the stage's root).
# buildah 1.28 has no --link: distroless-copy-link.buildah.Dockerfile is the same without it.
# expect: linked
ARG DISTROLESS
FROM ${DISTROLESS}
COPY --link busybox /bin/
COPY --link --chmod=0644 app.txt /lib/app/
ENTRYPOINT ["/bin/busybox", "echo", "linked"]
