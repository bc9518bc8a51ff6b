/* cli_sticky.h - the sticky-session options of cluster-run's command line. */
#ifndef CLI_STICKY_H
#define CLI_STICKY_H

#include <stddef.h>

#include "cli_options.h"

/* --sticky ip | header:NAME | cookie:NAME | query:NAME */
int cli_parse_sticky(const char *arg, struct cli_options *o, char *err,
		     size_t errlen);
/* --sticky-wait MS */
int cli_parse_sticky_wait(const char *arg, struct cli_options *o, char *err,
			  size_t errlen);
/* Once every option is read: --sticky needs rr, --sticky-wait a mode
 * that waits.  0, or -1 with a one-line message in err. */
int cli_check_sticky(const struct cli_options *o, char *err, size_t errlen);

#endif
