# A RUN that deletes a symlinked directory and makes a real one keeps what it did (the layer
# replaces the link, as the step asked); a later COPY goes into the new directory.
# expect: mine\nmarker
ARG DEBIAN
FROM ${DEBIAN}
RUN rm /sbin && mkdir /sbin && echo mine > /sbin/mine
COPY marker.txt /sbin/
CMD ["/bin/sh", "-c", "test ! -L /sbin && cat /sbin/mine /sbin/marker.txt"]
