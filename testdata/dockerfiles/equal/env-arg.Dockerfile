# ENV and ARG expansion in paths and commands: defaults, build-arg overrides, ${a:-b}, ${a:+b},
# an ENV made from an ARG, an ARG re-declared in a stage, WORKDIR and COPY through variables.
# Built with --build-arg NAME=given.
ARG BASE
ARG TOP=top-default
FROM ${BASE}
ARG TOP
ARG DIR=/envarg
ARG NAME
ARG UNSET
ENV APP_HOME=${DIR}/home SUB=data
ENV FROM_ARG=${NAME:-none} PLUS=${NAME:+was-set} MINUS=${UNSET:-fallback} EMPTY=${UNSET:+x}
RUN mkdir -p "${APP_HOME}/${SUB}" \
 && echo "$NAME $TOP $FROM_ARG $PLUS $MINUS [$EMPTY]" > "${APP_HOME}/values"
COPY hello.txt ${APP_HOME}/${SUB}/
WORKDIR ${APP_HOME}
COPY world.txt ${NAME:-default}.txt
COPY dir/a.conf ./$SUB/a-\$literal.conf
ENV SUB=changed
RUN mkdir "$SUB" && echo "$SUB" > "$SUB/sub"
