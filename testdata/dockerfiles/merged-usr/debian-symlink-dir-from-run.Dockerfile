# A symlinked directory the Dockerfile itself creates: COPY follows it into the real directory.
# expect: app v2\nreal
ARG DEBIAN
FROM ${DEBIAN}
RUN mkdir -p /opt/real && echo real > /opt/real/was-here && ln -s /opt/real /opt/link
COPY app.txt /opt/link/
COPY conf /opt/link/conf
CMD ["/bin/sh", "-c", "cat /opt/real/app.txt /opt/link/was-here && test -L /opt/link"]
