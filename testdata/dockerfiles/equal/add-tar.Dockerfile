# ADD: a local tar archive is extracted (owners, modes, symlinks and hardlinks from the
# archive), a gzip-compressed one too; a file named .tar that is no archive, and plain files,
# are copied.
ARG BASE
FROM ${BASE}
ADD archive.tar /add/
ADD archive.tar.gz /add/gz/
ADD fake.tar /add/
ADD hello.txt /add/plain.txt
ADD dir /add/dir/
ADD --chown=7:7 world.txt /add/owned.txt
