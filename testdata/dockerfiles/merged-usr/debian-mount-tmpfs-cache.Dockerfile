# tmpfs and cache mounts below /lib, /sbin and /usr/local/bin: nothing of them is in the image.
# expect: scratch\ncached
ARG DEBIAN
FROM ${DEBIAN}
RUN --mount=type=tmpfs,target=/lib/scratch sh -c 'echo scratch > /usr/lib/scratch/x && cat /lib/scratch/x > /tmpfs.txt'
RUN --mount=type=cache,target=/sbin/cache,id=merged-usr-corpus sh -c 'echo cached > /sbin/cache/c && cat /usr/sbin/cache/c > /cache.txt'
CMD ["/bin/cat", "/tmpfs.txt", "/cache.txt"]
