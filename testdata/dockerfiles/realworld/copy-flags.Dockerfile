# syntax=docker/dockerfile:1.7-labs
# The newer COPY and RUN flags: --chmod, --link (with --chown), --exclude (1.7 syntax), RUN
# --network=none, several heredocs in one RUN (one with <<- tab stripping), a source name with
# a literal `[` (written `[[]`: an unquoted `\[` is unescaped by the lexer and `data[1].txt`
# would then be a character class matching data1.txt).
# expect: offline: no network\nI am first\nsecond, tabs stripped\nliteral brackets
ARG DEBIAN
FROM ${DEBIAN}
COPY --chmod=755 scripts/entrypoint.sh /usr/local/bin/entrypoint.sh
COPY --chmod=0640 config/app.conf /etc/app/
COPY --link src/ /opt/app/src/
COPY --link --chown=1000:1000 assets /opt/app/assets
COPY --exclude=*.md --exclude=**/*.tmp docs/ /opt/app/docs/
COPY brackets/data[[]1].txt /opt/app/
RUN --network=none tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' \
      | grep -qv '^lo$' && echo "offline: has network" > /opt/app/net.txt \
      || echo "offline: no network" > /opt/app/net.txt
RUN <<FILE1 cat > /opt/app/file1 && <<-FILE2 cat > /opt/app/file2
I am first
FILE1
	second, tabs stripped
	FILE2
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
