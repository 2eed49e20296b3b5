# WORKDIR through a link the Dockerfile made: created at the target, RUN runs there (the
# runtime resolves the working directory, so even the shell's logical pwd is the real path).
# expect: /srv/data/app\n/srv/data/app
ARG DEBIAN
FROM ${DEBIAN}
RUN ln -s /srv/data /data
WORKDIR /data/app
RUN touch here && pwd -P > pwd-real.txt && pwd > pwd-logical.txt
COPY app.txt ./
CMD ["/bin/sh", "-c", "cat /srv/data/app/pwd-real.txt /srv/data/app/pwd-logical.txt"]
