# Deletes: files and directories of earlier layers and of the base image (whiteouts), a file
# COPY'd in an earlier layer, a file created and deleted within one RUN (never in a layer).
ARG BASE
FROM ${BASE}
RUN mkdir -p /wh/keep /wh/gone/deep \
 && echo 1 > /wh/gone/deep/f \
 && echo 2 > /wh/keep/f \
 && echo 3 > /wh/file \
 && echo 4 > /wh/keep/also-gone
COPY hello.txt /wh/copied.txt
RUN rm -rf /wh/gone /wh/file /wh/keep/also-gone /wh/copied.txt \
 && echo transient > /wh/transient && rm /wh/transient
# base files and directories
RUN rm -f /etc/debian_version /usr/bin/sdiff \
 && rm -rf /usr/share/doc/bash /usr/share/zoneinfo/Antarctica
