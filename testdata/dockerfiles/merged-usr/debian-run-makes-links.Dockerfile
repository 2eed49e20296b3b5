# RUN creates links in /bin and /lib (through the base's links); COPY follows a link made this
# way and replaces another one.
# expect: hello from the alias\napp v2
ARG DEBIAN
FROM ${DEBIAN}
RUN ln -s /usr/share/doc /lib/docs-link && printf '#!/bin/sh\necho hello from the alias\n' > /bin/hello \
 && chmod 755 /bin/hello && ln -s hello /bin/alias
COPY app.txt /lib/docs-link/app/
CMD ["/bin/sh", "-c", "/bin/alias; cat /usr/share/doc/app/app.txt"]
