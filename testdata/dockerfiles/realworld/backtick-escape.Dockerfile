# escape=`
# syntax=docker/dockerfile:1
# The escape directive of Windows-style Dockerfiles: a backtick continues lines, a backslash is
# an ordinary character (paths like C:\app keep theirs).
# expect: C:\app\bin;C:\tools\n3 lines
ARG DEBIAN
FROM ${DEBIAN}
ENV WINPATH=C:\app\bin;C:\tools `
    LINES=3
WORKDIR /work
RUN printf '%s\n' "$WINPATH" > path.txt `
 && printf 'a\nb\nc\n' > lines.txt `
 && echo "$(wc -l < lines.txt) lines" >> path.txt
COPY hello.txt `
     /work/copied/
CMD ["cat", "/work/path.txt"]
