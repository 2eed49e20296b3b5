# The reference build of heredoc.Dockerfile for buildah: buildah 1.28 (Debian 12) predates
# heredocs (buildah 1.35 has them), so this file writes the same files without heredoc syntax,
# as BuildKit's heredocs define them: a RUN heredoc is a script for the shell (or for the
# command named after it), a COPY heredoc is a file named after its destination (or after its
# delimiter, in a directory) with mode 0644 (unless --chmod), owned by root, its variables
# expanded unless the delimiter is quoted.
ARG BASE
FROM ${BASE}
ENV GREETING=hi
RUN set -e; mkdir -p /hd; echo one > /hd/one; echo "$GREETING" > /hd/greeting
RUN bash -c 'set -euo pipefail; echo "tabs stripped, bash ${BASH_VERSINFO[0]}" > /hd/tab'
RUN printf 'greeting: hi\n' > /hd/copied.txt && chmod 0644 /hd/copied.txt
RUN printf 'no ${GREETING} expansion here\n' > /hd/literal.txt && chmod 0644 /hd/literal.txt
RUN mkdir -p /hd/multi && printf 'first\n' > /hd/multi/A && printf 'second\n' > /hd/multi/B \
 && chmod 0755 /hd/multi && chmod 0644 /hd/multi/A /hd/multi/B
RUN printf '#!/bin/sh\necho from a heredoc script\n' > /hd/script.sh && chmod 0755 /hd/script.sh
RUN /hd/script.sh > /hd/script.out
