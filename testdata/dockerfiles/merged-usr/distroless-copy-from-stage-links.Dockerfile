# Symlinks made in a build stage, copied as links, then used as copy destinations.
# expect: app v2
ARG DEBIAN
ARG DISTROLESS
FROM ${DEBIAN} AS links
RUN mkdir -p /out/opt && ln -s /usr/local/share /out/opt/share-link && ln -s ../lib /out/opt/lib-link

FROM ${DISTROLESS}
COPY busybox /bin/
COPY --from=links /out/opt/ /opt/
COPY app.txt /opt/share-link/app/
COPY marker.txt /opt/lib-link/
ENTRYPOINT ["/bin/busybox", "cat", "/usr/local/share/app/app.txt"]
