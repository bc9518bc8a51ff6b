#ifndef SHIM_LOCATE_H
#define SHIM_LOCATE_H

#include <stdbool.h>
#include <stddef.h>

/* Absolute path of libcluster_shim.so into out; -1 when not found, or when
 * CLUSTER_SHIM_PATH names something that is not the shim, with one line
 * saying so in err. */
int shim_locate(char *out, size_t cap, char *err, size_t errlen);

#endif
