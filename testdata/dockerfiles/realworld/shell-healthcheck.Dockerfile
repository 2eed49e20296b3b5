# syntax=docker/dockerfile:1
# What people copy into service images: build args declared before FROM (used in FROM, then
# re-declared in the stage to be seen), SHELL with pipefail, a multi-line ENV with a comment
# line inside the continuation, WORKDIR built from ARG and ENV values, a user and group written
# to /etc/passwd and /etc/group by a RUN and then named in USER name:group, ONBUILD triggers,
# HEALTHCHECK with every option, STOPSIGNAL, EXPOSE with protocols, LABELs from build args.
# expect: app 1500 app 1500\n/opt/corpus-app/releases/v1.4.2\nCORPUS-APP 1.4.2
ARG DEBIAN
ARG VERSION=1.4.2
ARG PREFIX=/opt

FROM ${DEBIAN} AS app
# an ARG before FROM is only seen here when declared again
ARG VERSION
ARG PREFIX
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ENV APP_NAME=corpus-app \
    APP_VERSION=${VERSION} \
    # the install prefix comes from the build arg
    APP_DIR=${PREFIX}/corpus-app

WORKDIR ${APP_DIR}/releases/v${APP_VERSION}

RUN set -eux; \
    # comment lines inside a continued RUN are not part of the command
    echo "${APP_NAME} ${APP_VERSION}" | tee VERSION | tr '[:lower:]' '[:upper:]' > VERSION.upper; \
\
    ln -s "${APP_DIR}/releases/v${APP_VERSION}" "${APP_DIR}/current"; \
    printf '%s\n' "${BASH_VERSION%%.*}" > bash-major

RUN echo 'app:x:1500:1500:App user:/home/app:/bin/bash' >> /etc/passwd \
 && echo 'app:x:1500:' >> /etc/group \
 && mkdir -p /home/app \
 && chown app:app /home/app "${APP_DIR}/releases/v${APP_VERSION}"

USER app:app
WORKDIR /home/app
RUN { id -un; id -u; id -gn; id -g; } | paste -sd ' ' > whoami \
 && readlink "${APP_DIR}/current" >> whoami \
 && cat "${APP_DIR}/current/VERSION.upper" >> whoami \
 && touch "${APP_DIR}/current/written-as-app"

ONBUILD COPY . /home/app/src
ONBUILD RUN echo "built on top of ${APP_NAME}" > /home/app/src/.onbuild

HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD test -s /home/app/whoami || exit 1
STOPSIGNAL SIGTERM
EXPOSE 8080/tcp 8125/udp 9090
LABEL org.opencontainers.image.title="corpus app" \
      org.opencontainers.image.version="${VERSION}"
CMD ["cat", "/home/app/whoami"]
