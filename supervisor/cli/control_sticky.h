/* control_sticky.h - `ctl status`'s line and JSON member on sticky
 * sessions (control_sticky.c). */
#ifndef CONTROL_STICKY_H
#define CONTROL_STICKY_H

struct evbuffer;
struct pool;

/* "sticky ip: clients by slot 1=36 2=33 (69 remembered)\n", or nothing
 * when sticky is off. */
void control_sticky_text(struct pool *p, struct evbuffer *out);
/* ,\n  "sticky": {"mode": "ip", "remembered": 69, "clients": {"1": 36, ...}}
 * or "sticky": null. */
void control_sticky_json(struct pool *p, struct evbuffer *out);

#endif
