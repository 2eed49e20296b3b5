# USER and WORKDIR: WORKDIR creates missing directories (absolute and relative), RUN runs in it
# as the current USER (a name from /etc/passwd, or numeric uid:gid).
ARG BASE
FROM ${BASE}
RUN echo 'app:x:1234:2345:app user:/home/app:/bin/sh' >> /etc/passwd \
 && echo 'appgrp:x:2345:' >> /etc/group \
 && mkdir -p /home/app && chown 1234:2345 /home/app
WORKDIR /work/deep/dir
RUN touch created-in-workdir && id -u > uid.txt && pwd > pwd.txt
USER app
WORKDIR /home/app/sub
RUN touch mine && id -u > id.txt && id -g >> id.txt && pwd > pwd.txt
WORKDIR relative/deeper
RUN pwd > pwd.txt
USER 1234:2345
RUN echo numeric > /home/app/numeric && id -g > /home/app/numeric-gid
USER root
WORKDIR /
RUN id -u > /root-uid.txt
