# A link to a file made by a RUN, then a COPY onto the link and onto its directory link.
# expect: v1\napp v2\nmarker
ARG DEBIAN
FROM ${DEBIAN}
RUN mkdir -p /opt/app/releases && echo v1 > /opt/app/releases/v1 \
 && ln -s releases/v1 /opt/app/current && ln -s /opt/app/releases /opt/app/rel
COPY app.txt /opt/app/current
COPY marker.txt /opt/app/rel/
CMD ["/bin/cat", "/opt/app/releases/v1", "/opt/app/current", "/opt/app/releases/marker.txt"]
