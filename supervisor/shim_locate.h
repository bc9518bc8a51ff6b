#ifndef SHIM_LOCATE_H
#define SHIM_LOCATE_H

#include <stdbool.h>
#include <stddef.h>

/* Absolute path of libcluster_shim.so into out; -1 when not found. */
int shim_locate(char *out, size_t cap);

#endif
