# The upstream shape that broke: a static program copied into /bin/ of a merged-/usr distroless
# base (bin -> usr/bin). It must land in /usr/bin, the bin symlink must stay a symlink.
# expect: copied to /bin
ARG DISTROLESS
FROM ${DISTROLESS}
COPY busybox /bin/
ENTRYPOINT ["/bin/busybox", "echo", "copied to /bin"]
