# A relative link that climbs above the root (../../..): resolved inside the image's root, as a
# chroot would, never on the build host.
# expect: app v2
ARG DEBIAN
FROM ${DEBIAN}
RUN mkdir -p /srv && ln -s ../../../../../usr/share/outside /srv/up
COPY app.txt /srv/up/
COPY conf /srv/up/conf/
CMD ["/bin/cat", "/usr/share/outside/app.txt"]
