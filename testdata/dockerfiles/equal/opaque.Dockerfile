# A directory deleted and made again in a later layer (an opaque directory: nothing of the old
# one may show through), in this image's layers and in the base image; type changes: a file
# becomes a directory, a directory a file, a file a symlink, a symlink a file.
ARG BASE
FROM ${BASE}
RUN mkdir -p /op/dir/a /op/dir/b /op/todir /op/tofile \
 && echo x > /op/dir/a/f && echo y > /op/dir/b/g && : > /op/dir/top \
 && echo was-a-file > /op/file-to-dir \
 && echo in > /op/tofile/inner \
 && echo target > /op/target && echo was-a-file > /op/file-to-link \
 && ln -s target /op/link-to-file
RUN rm -rf /op/dir && mkdir -p /op/dir/a && echo z > /op/dir/a/new
RUN rm -rf /usr/share/doc && mkdir /usr/share/doc && echo only > /usr/share/doc/README
RUN rm /op/file-to-dir && mkdir /op/file-to-dir && echo now-a-dir > /op/file-to-dir/f \
 && rm -rf /op/tofile && echo now-a-file > /op/tofile \
 && rm /op/file-to-link && ln -s target /op/file-to-link \
 && rm /op/link-to-file && echo now-a-file > /op/link-to-file
