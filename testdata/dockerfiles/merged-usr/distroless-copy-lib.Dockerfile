# Files and a directory's contents copied into /lib/ (lib -> usr/lib) and a new directory below it.
# expect: listen = 8080\ndebug = false
ARG DISTROLESS
FROM ${DISTROLESS}
COPY busybox /usr/local/bin/
COPY tree/lib/libtree.so.1 /lib/
COPY conf/ /lib/app/
ENTRYPOINT ["/usr/local/bin/busybox", "cat", "/usr/lib/app/app.conf", "/lib/app/extra/more.conf"]
