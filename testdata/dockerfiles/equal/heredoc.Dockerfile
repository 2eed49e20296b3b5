# Heredocs: RUN with a script (default shell and an explicit interpreter, <<- strips leading
# tabs; the RUN heredoc goes through /bin/sh, so a quoted delimiter keeps bash syntax from dash's
# expansion), COPY of inline files (with and without variable expansion), several heredocs in
# one instruction.
ARG BASE
FROM ${BASE}
ENV GREETING=hi
RUN <<EOF
set -e
mkdir -p /hd
echo one > /hd/one
echo "$GREETING" > /hd/greeting
EOF
RUN <<-'EOT' bash
	set -euo pipefail
	echo "tabs stripped, bash ${BASH_VERSINFO[0]}" > /hd/tab
	EOT
COPY <<EOF /hd/copied.txt
greeting: ${GREETING}
EOF
COPY <<'EOF' /hd/literal.txt
no ${GREETING} expansion here
EOF
COPY <<A <<B /hd/multi/
first
A
second
B
COPY --chmod=0755 <<EOF /hd/script.sh
#!/bin/sh
echo from a heredoc script
EOF
RUN /hd/script.sh > /hd/script.out
