# WORKDIR in /lib (a symlink) and below /usr/local/bin.
# expect: /usr/lib/app\n/usr/local/bin/sub
ARG DEBIAN
FROM ${DEBIAN}
WORKDIR /lib/app
RUN pwd -P > where.txt
WORKDIR /usr/local/bin/sub
RUN pwd -P > where.txt
CMD ["/bin/sh", "-c", "cat /usr/lib/app/where.txt /usr/local/bin/sub/where.txt"]
