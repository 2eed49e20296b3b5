#ifndef FASTSUM_H
#define FASTSUM_H

#include <stddef.h>
#include <stdint.h>

uint32_t fastsum_adler32(const unsigned char *data, size_t len);
const char *fastsum_libc_version(void);

#endif
