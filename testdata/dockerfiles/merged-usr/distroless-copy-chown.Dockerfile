# --chown and --chmod on files copied into symlinked directories: the files get them, the
# existing /usr/bin and /usr/lib keep their owner and mode.
# expect: 65532:65532 640
ARG DISTROLESS
FROM ${DISTROLESS}
COPY busybox /bin/
COPY --chown=nonroot:nonroot --chmod=0640 app.txt /lib/owned/
ENTRYPOINT ["/bin/busybox", "stat", "-c", "%u:%g %a", "/lib/owned/app.txt"]
