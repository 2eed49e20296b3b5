# A link to a directory that does not exist yet: the copy creates it at the link's target.
# expect: marker
ARG DEBIAN
FROM ${DEBIAN}
RUN ln -s /data/volume /vol
COPY marker.txt /vol/
CMD ["/bin/cat", "/data/volume/marker.txt"]
