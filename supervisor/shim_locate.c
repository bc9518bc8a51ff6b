/*
 * shim_locate.c - where libcluster_shim.so is: beside cluster-run in the
 * build tree (build/supervisor/../shim/), or where `meson install` put it,
 * found relative to the installed binary so a DESTDIR or moved prefix works.
 * CLUSTER_SHIM_PATH overrides both.
 */
#include "shim_locate.h"

#include <limits.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool readable(const char *path)
{
	return access(path, R_OK) == 0;
}

static bool try_candidate(const char *dir, const char *rel, char *out,
			  size_t cap)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/%s", dir, rel) >= (int)sizeof(path))
		return false;
	if (!readable(path) || !realpath(path, out))
		return false;
	return strlen(out) < cap;
}

int shim_locate(char *out, size_t cap)
{
	const char *env = getenv("CLUSTER_SHIM_PATH");
	char exe[PATH_MAX], *dir;
	ssize_t n;

	if (env && *env)
		return realpath(env, out) && readable(out) ? 0 : -1;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		dir = dirname(exe);
		if (try_candidate(dir, "../shim/libcluster_shim.so", out, cap) ||
		    try_candidate(dir, SHIM_RELATIVE_TO_BINDIR, out, cap) ||
		    try_candidate(dir, "libcluster_shim.so", out, cap))
			return 0;
	}
	if (readable(SHIM_INSTALL_PATH) && realpath(SHIM_INSTALL_PATH, out))
		return 0;
	return -1;
}
