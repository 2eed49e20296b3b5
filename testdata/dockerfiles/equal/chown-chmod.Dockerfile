# COPY --chown (numeric, names from /etc/passwd and /etc/group, user only) and --chmod (octal,
# on files and directories), and both together.
ARG BASE
FROM ${BASE}
RUN echo 'app:x:1234:2345:app user:/home/app:/bin/sh' >> /etc/passwd \
 && echo 'appgrp:x:2345:' >> /etc/group \
 && echo 'other:x:3456:' >> /etc/group
COPY --chown=1001:1002 hello.txt /own/numeric.txt
COPY --chown=1001 world.txt /own/numeric-user-only.txt
COPY --chown=app:appgrp dir/ /own/named/
COPY --chown=app:other hello.txt /own/named-other-group.txt
COPY --chown=app world.txt /own/named-user-only.txt
COPY --chown=app:2345 modes/ /own/mixed/
COPY --chmod=0640 hello.txt /own/chmod.txt
COPY --chmod=750 dir/ /own/chmod-dir/
COPY --chmod=600 --chown=app:appgrp modes/run.sh /own/both.sh
