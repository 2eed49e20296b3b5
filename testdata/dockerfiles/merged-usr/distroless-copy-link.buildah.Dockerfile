# distroless-copy-link.Dockerfile without --link (buildah 1.28 lacks it).
ARG DISTROLESS
FROM ${DISTROLESS}
COPY busybox /bin/
COPY --chmod=0644 app.txt /lib/app/
ENTRYPOINT ["/bin/busybox", "echo", "linked"]
