# RUN --mount targets below symlinked directories: the mount point is made at the real path
# (and removed again), the step's own writes are kept.
# expect: #!/bin/sh\necho tool\nlisten = 8080
ARG DEBIAN
FROM ${DEBIAN}
RUN --mount=type=bind,source=tree,target=/bin/mnt cat /bin/mnt/bin/tool > /tool-copy
RUN --mount=type=bind,source=conf,target=/lib/conf-mnt cp /usr/lib/conf-mnt/app.conf /opt-app.conf
CMD ["/bin/cat", "/tool-copy", "/opt-app.conf"]
