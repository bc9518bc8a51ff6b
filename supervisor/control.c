/* Placeholder until the control socket lands: cluster-run runs without one. */
#include "control.h"

#include <stdio.h>

int control_default_path(char *out, size_t cap, char *err, size_t errlen)
{
	snprintf(err, errlen, "no control socket in this build");
	return -1;
}

struct control *control_new(struct event_base *base, struct pool *p,
			    const char *path, char *err, size_t errlen)
{
	snprintf(err, errlen, "no control socket in this build");
	return NULL;
}

void control_free(struct control *ctl)
{
}

int ctl_main(int argc, char **argv)
{
	fprintf(stderr, "cluster-run: ctl is not available in this build\n");
	return 2;
}
