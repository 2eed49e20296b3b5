# A chain of links (an absolute one to a relative one to a real directory).
# expect: marker
ARG DEBIAN
FROM ${DEBIAN}
RUN mkdir -p /usr/local/lib/chain && ln -s /b /a && ln -s usr/local/lib/chain /b
COPY marker.txt /a/
COPY conf/ /a/conf/
WORKDIR /a/work
RUN pwd -P > /usr/local/lib/chain/work/pwd.txt
CMD ["/bin/cat", "/usr/local/lib/chain/marker.txt"]
