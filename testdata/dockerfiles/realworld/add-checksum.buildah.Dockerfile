# add-checksum.Dockerfile without ADD --checksum (buildah 1.28 lacks it).
# expect: ok from the command run by tini
ARG DEBIAN
FROM ${DEBIAN}
ARG MIRROR
ENV TINI_VERSION=v0.19.0
ADD ${MIRROR}/krallin/tini/releases/download/${TINI_VERSION}/tini /tini
RUN chmod +x /tini
ENTRYPOINT ["/tini", "--"]
CMD ["echo", "ok from the command run by tini"]
