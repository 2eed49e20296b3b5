# syntax=docker/dockerfile:1
# A monorepo-style .dockerignore: `**` patterns, directories left out with `!` re-includes of
# what is needed inside them, comments and a leading `/`; `COPY . .` copies what is left.
FROM scratch
WORKDIR /src
COPY . .
