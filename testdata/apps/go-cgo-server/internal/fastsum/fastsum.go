// Package fastsum wraps the C checksum code of fastsum.c.
package fastsum

/*
#cgo CFLAGS: -O2 -Wall
#include <stdlib.h>
#include "fastsum.h"
*/
import "C"

import "unsafe"

// Adler32 is the Adler-32 checksum of data, computed in C.
func Adler32(data []byte) uint32 {
	if len(data) == 0 {
		return uint32(C.fastsum_adler32(nil, 0))
	}
	return uint32(C.fastsum_adler32((*C.uchar)(unsafe.Pointer(&data[0])), C.size_t(len(data))))
}

// LibcVersion is the version of the C library the process runs on.
func LibcVersion() string {
	return C.GoString(C.fastsum_libc_version())
}
