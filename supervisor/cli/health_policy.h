/*
 * health_policy.h - what cluster-run does with the health checker's
 * verdicts (health_probe.h): a worker in charge that fails N probes in a
 * row is replaced, with one line; a reload's replacement is ready once it
 * passes its first probe, and one that fails N stops the reload (pool.h).
 */
#ifndef HEALTH_POLICY_H
#define HEALTH_POLICY_H

#include "health_options.h"
#include "pool.h"

struct health_checker;

/* NULL without --health-check (or, with errno, when it cannot start). */
struct health_checker *health_policy_start(struct cluster *c, struct pool *p,
					   const struct health_options *o);

#endif
