# ADD of plain files (no archive) into /bin/ and onto /sbin/NAME.
# expect: add ok
ARG DISTROLESS
FROM ${DISTROLESS}
ADD busybox /bin/
ADD marker.txt /sbin/added-marker
ENTRYPOINT ["/bin/busybox", "echo", "add ok"]
