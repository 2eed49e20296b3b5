# .dockerignore (context/.dockerignore): excluded files are not in the context, `!` re-includes
# (also a file inside an excluded directory), `**` spans directories.
ARG BASE
FROM ${BASE}
COPY . /ctx/
COPY logs /logs-only/
