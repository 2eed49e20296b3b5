# ADD of an archive holding bin/ and lib/ into /usr/: merged into the real directories.
# expect: archived lib
ARG DISTROLESS
FROM ${DISTROLESS}
COPY busybox /bin/
ADD tools.tar /usr/
ENTRYPOINT ["/bin/busybox", "cat", "/lib/libarchived.so.1"]
