# Symlinks (relative, absolute, dangling, to a directory) and hardlinks (within a layer, and to a
# file of the base image, across layers).
ARG BASE
FROM ${BASE}
RUN mkdir -p /links/dir && cd /links \
 && echo t > target \
 && ln -s target rel \
 && ln -s /links/target abs \
 && ln -s missing dangling \
 && ln -s dir dirlink \
 && ln -s ../links/dir/../target through-dots \
 && ln target hard1 \
 && ln target dir/hard2
RUN ln /etc/debian_version /links/hard-to-base \
 && ln -sf /bin/bash /links/shell \
 && ln -s /links/rel /links/chain
COPY link-to-hello /links/from-context
RUN ln /links/hard1 /links/hard3
