# copy-flags.Dockerfile without what buildah 1.28 lacks (COPY --link and --exclude, RUN
# --network, heredocs): the same files made another way. --exclude matches below the directory
# copied (BuildKit): `*.md` takes docs/README.md, not docs/guide/notes.md. buildah 1.28 copies
# data1.txt where a wildcard matched data[1].txt (`data[[]1].txt`, even `data?1?.txt`: it seems
# to glob the matched name again), so the file comes with its directory here.
ARG DEBIAN
FROM ${DEBIAN}
COPY --chmod=755 scripts/entrypoint.sh /usr/local/bin/entrypoint.sh
COPY --chmod=0640 config/app.conf /etc/app/
COPY src/ /opt/app/src/
COPY --chown=1000:1000 assets /opt/app/assets
COPY docs/ /opt/app/docs/
RUN rm /opt/app/docs/README.md /opt/app/docs/guide/scratch.tmp
COPY brackets/ /opt/app/
RUN rm /opt/app/data1.txt
RUN echo "offline: no network" > /opt/app/net.txt \
 && printf 'I am first\n' > /opt/app/file1 \
 && printf 'second, tabs stripped\n' > /opt/app/file2
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
