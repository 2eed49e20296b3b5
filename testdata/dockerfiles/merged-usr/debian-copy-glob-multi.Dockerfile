# Several sources and a glob into /bin/ and /sbin/ in one COPY each, then a COPY --from whose
# source goes through the other stage's /sbin link (followed inside that stage's root).
# expect: app-notes.txt\napp-version.txt
ARG DEBIAN
FROM ${DEBIAN} AS base
COPY dist/app-* /sbin/dist/
COPY app.txt marker.txt /bin/

FROM ${DEBIAN}
COPY --from=base /sbin/dist/ /bin/dist/
CMD ["/bin/ls", "/usr/bin/dist"]
