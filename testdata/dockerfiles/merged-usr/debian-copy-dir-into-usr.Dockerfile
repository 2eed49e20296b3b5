# A directory with bin/ and lib/ copied into /usr/ (real directories) and into /usr/local/.
# expect: tool\nlocal
ARG DEBIAN
FROM ${DEBIAN}
COPY tree/ /usr/
COPY usr/local/ /usr/local/
CMD ["/bin/sh", "-c", "/bin/tool; /usr/local/bin/local-tool"]
