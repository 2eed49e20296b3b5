# RUN: files and directories created, base files modified, modes and owners changed, special
# bits, an empty file and dir, a FIFO, names with spaces, a file in /tmp (part of the root
# filesystem in a RUN, as in Docker). Built on the `build-base` image.
ARG BASE
FROM ${BASE}
RUN mkdir -p /opt/run/sub/empty-dir \
 && echo hello > /opt/run/hello.txt \
 && printf 'a\nb\n' > /opt/run/sub/lines \
 && : > /opt/run/empty \
 && echo spaced > '/opt/run/with space.txt' \
 && mkfifo /opt/run/fifo \
 && echo kept > /tmp/written-by-run
# owners and modes of files made in an earlier layer (chown first: it clears setuid bits)
RUN chown -R 4242:4343 /opt/run/sub \
 && chown 1000:1000 /opt/run/empty \
 && chmod 0600 /opt/run/hello.txt \
 && chmod 0750 /opt/run/sub \
 && chmod 4755 /opt/run/sub/lines \
 && chmod 2775 /opt/run/sub/empty-dir \
 && mkdir -m 1777 /opt/run/sticky
# base files: contents appended, a mode changed, an owner changed, a file replaced
RUN echo '# appended by RUN' >> /etc/bash.bashrc \
 && chmod 0640 /etc/debian_version \
 && chown 0:100 /etc/os-release \
 && echo replaced > /etc/issue.net \
 && chmod 0700 /usr/share/doc
# a RUN that changes nothing but times
RUN touch /etc/bash.bashrc /opt/run/hello.txt
