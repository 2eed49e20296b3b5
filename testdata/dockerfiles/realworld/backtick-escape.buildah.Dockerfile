# escape=`
# backtick-escape.Dockerfile for buildah 1.28, which still takes a backslash in an ENV value
# as an escape under `# escape=`` ` (BuildKit and ocibuild keep it): the backslashes doubled.
ARG DEBIAN
FROM ${DEBIAN}
ENV WINPATH=C:\\app\\bin;C:\\tools `
    LINES=3
WORKDIR /work
RUN printf '%s\n' "$WINPATH" > path.txt `
 && printf 'a\nb\nc\n' > lines.txt `
 && echo "$(wc -l < lines.txt) lines" >> path.txt
COPY hello.txt `
     /work/copied/
CMD ["cat", "/work/path.txt"]
