# syntax=docker/dockerfile:1
# The tini pattern of many service images: a pinned release downloaded with ADD and checked
# with --checksum, made executable, used as the entrypoint. MIRROR is a loopback HTTP server the
# test runs (every path answers with the same small script).
# expect: ok from the command run by tini
ARG DEBIAN
FROM ${DEBIAN}
ARG MIRROR
ENV TINI_VERSION=v0.19.0
ADD --checksum=sha256:0b62aa6f5964975f9256ca7234b506516ba0a3e5fdb8f1257c0ce92f2a9311c4 ${MIRROR}/krallin/tini/releases/download/${TINI_VERSION}/tini /tini
RUN chmod +x /tini
ENTRYPOINT ["/tini", "--"]
CMD ["echo", "ok from the command run by tini"]
