# Multi-stage: COPY --from a named stage and by index, whole directories (with symlinks and
# modes), single files, with --chown; a stage that builds FROM an earlier stage.
ARG BASE
FROM ${BASE} AS build
RUN mkdir -p /out/bin /out/share \
 && printf '#!/bin/sh\necho built\n' > /out/bin/tool && chmod 755 /out/bin/tool \
 && ln -s tool /out/bin/alias \
 && echo data > /out/share/data && chmod 0640 /out/share/data \
 && chown 12:34 /out/share/data

FROM ${BASE} AS other
RUN echo other > /other.txt && mkdir /other-dir && echo in > /other-dir/f

FROM build AS derived
RUN echo derived >> /out/share/data && rm /out/bin/alias

FROM ${BASE}
COPY --from=build /out /opt/out
COPY --from=build /out/bin/tool /usr/local/bin/
COPY --from=other /other.txt /other-dir /
COPY --from=0 --chown=1:1 /out/bin /opt/chowned
COPY --from=derived /out/share/data /opt/derived-data
RUN /usr/local/bin/tool > /opt/ran.txt
