/*
 * metrics_text.h - the pool, its workers and listeners in Prometheus' text
 * exposition format (version 0.0.4), for GET /metrics.
 */
#ifndef METRICS_TEXT_H
#define METRICS_TEXT_H

struct evbuffer;
struct pool;

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Appends every metric family (HELP, TYPE, samples) to out; 0, or -1 when
 * memory ran out (out may hold part of it). */
int metrics_render(struct evbuffer *out, const struct pool *p);

#endif
