# Absolute links to paths that exist on a build host but not in the image, and one with `..`
# above the root: the copies land inside the image's root.
# expect: marker\napp v2
ARG DEBIAN
FROM ${DEBIAN}
RUN ln -s /var/tmp/host-only /host-only && ln -s /../../../etc/host-etc /etc-up
COPY marker.txt /host-only/
COPY app.txt /etc-up/
CMD ["/bin/cat", "/var/tmp/host-only/marker.txt", "/etc/host-etc/app.txt"]
