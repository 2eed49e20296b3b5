# syntax=docker/dockerfile:1
# The shape of Docker's Go guide (`docker init`): the module downloaded with the cache and bind
# mounts, the binary built with a go-build cache mount and the whole context bind-mounted at the
# working directory, CGO off, the target platform's GOARCH; a small final stage with an
# unprivileged user. GO is `ocibuild base build --profile go`, FINAL is `--profile build-base`.
# expect: svc listening on :8080 as uid 10001 gid 10001 (go, static)

ARG GO_VERSION=local
ARG GO
ARG FINAL
FROM --platform=$BUILDPLATFORM ${GO} AS build
WORKDIR /src

ENV GOPATH=/go GOTOOLCHAIN=${GO_VERSION}

# Download dependencies as a separate step to take advantage of Docker's caching.
# Leverage a cache mount to /go/pkg/mod/ to speed up subsequent builds.
# Leverage bind mounts to go.sum and go.mod to avoid having to copy them into
# the container.
RUN --mount=type=cache,target=/go/pkg/mod/ \
    --mount=type=bind,source=go.mod,target=go.mod \
    go mod download -x

# This is the architecture you're building for, which is passed in by the builder.
# Placing it here allows the previous steps to be cached across architectures.
ARG TARGETARCH

# Build the application.
# Leverage a cache mount to /go/pkg/mod/ to speed up subsequent builds.
# Leverage a bind mount to the current directory to avoid having to copy the
# source code into the container.
RUN --mount=type=cache,target=/go/pkg/mod/ \
    --mount=type=cache,target=/root/.cache/go-build \
    --mount=type=bind,target=. \
    CGO_ENABLED=0 GOARCH=$TARGETARCH go build -trimpath -ldflags="-s -w" -o /bin/server .

################################################################################
# Create a new stage for running the application that contains the minimal
# runtime dependencies for the application.
FROM ${FINAL} AS final

# Create a non-privileged user that the app will run under.
# See https://docs.docker.com/go/dockerfile-user-best-practices/
ARG UID=10001
RUN echo "appuser:x:${UID}:${UID}:app user:/nonexistent:/usr/sbin/nologin" >> /etc/passwd && \
    echo "appuser:x:${UID}:" >> /etc/group
USER appuser:appuser

# Copy the executable from the "build" stage.
COPY --from=build /bin/server /bin/

# Expose the port that the application listens on.
EXPOSE 8080/tcp

# What the container should run when it is started.
ENTRYPOINT [ "/bin/server" ]
CMD ["--once"]
