# COPY: single files, renames, directories (their content, not themselves), several sources,
# globs, symlinks from the context (kept as links), modes kept as they are in the context.
ARG BASE
FROM ${BASE}
COPY hello.txt /copy/
COPY hello.txt /copy/renamed.txt
COPY dir/ /copy/dir/
COPY dir /copy/dir-no-slash
COPY dir/sub /copy/into-existing/
COPY world.txt dir/a.conf /copy/multi/
COPY *.txt /copy/globbed/
COPY dir/*.conf /copy/confs/
COPY dir/su? /copy/question/
COPY ["space name.txt", "/copy/json form/"]
COPY link-to-hello link-to-dir /copy/links/
COPY modes/ /copy/modes/
# a file onto an existing base file, and into an existing base directory
COPY world.txt /etc/issue.net
COPY hello.txt /usr/share/
