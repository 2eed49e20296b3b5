# The issue's two-stage Dockerfile: build outputs matched by a glob, copied from a build stage
# into /bin/ of a distroless stage, run by their /bin path.
# expect: app 1.2.3\nversion 1.2.3
ARG DEBIAN
ARG DISTROLESS
FROM ${DEBIAN} AS build
WORKDIR /src
COPY busybox dist/app-version.txt ./dist/
RUN cp dist/busybox dist/busybox-app && chmod 0755 dist/busybox-app && rm dist/busybox

FROM ${DISTROLESS}
COPY --from=build /src/dist/app* /src/dist/busybox* /bin/
USER nonroot
CMD ["/bin/busybox-app", "sh", "-c", "echo app 1.2.3; cat /bin/app-version.txt"]
