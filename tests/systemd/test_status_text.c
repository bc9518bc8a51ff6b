/* test_status_text.c - the STATUS= text systemd shows (sd_notify.c). */
#include <criterion/criterion.h>

#include "sd_notify.h"

static const char *text(struct systemd_status st)
{
	static char buf[256];

	systemd_status_text(&st, buf, sizeof(buf));
	return buf;
}

Test(status_text, workers_only)
{
	cr_expect_str_eq(text((struct systemd_status){ .listening = 8,
						       .wanted = 8,
						       .queued = -1 }),
			 "8/8 workers listening");
	cr_expect_str_eq(text((struct systemd_status){ .listening = 0,
						       .wanted = 1,
						       .queued = -1 }),
			 "0/1 worker listening");
}

Test(status_text, reload_and_its_age)
{
	struct systemd_status st = { .listening = 8, .wanted = 8,
				     .reload = SYSTEMD_RELOAD_RUNNING,
				     .queued = -1 };

	cr_expect_str_eq(text(st), "8/8 workers listening; reloading");
	st.reload = SYSTEMD_RELOAD_DONE;
	st.reload_age_ms = 59999;
	cr_expect_str_eq(text(st), "8/8 workers listening; reload done just now");
	st.reload_age_ms = 2 * 60000 + 5000;
	cr_expect_str_eq(text(st), "8/8 workers listening; reload done 2m ago");
	st.reload_age_ms = 5LL * 3600 * 1000;
	cr_expect_str_eq(text(st), "8/8 workers listening; reload done 5h ago");
	st.reload_age_ms = 3LL * 24 * 3600 * 1000;
	cr_expect_str_eq(text(st), "8/8 workers listening; reload done 3d ago");
	st.reload = SYSTEMD_RELOAD_STOPPED;
	st.reload_age_ms = 0;
	cr_expect_str_eq(text(st), "8/8 workers listening; reload stopped just "
			 "now (the old workers serve)");
}

Test(status_text, restarts)
{
	struct systemd_status st = { .listening = 7, .wanted = 8,
				     .restarts = 1,
				     .reload = SYSTEMD_RELOAD_DONE,
				     .reload_age_ms = 180000, .queued = -1 };

	cr_expect_str_eq(text(st), "7/8 workers listening; reload done 3m ago; "
			 "1 restart");
	st.restarts = 12;
	st.reload = SYSTEMD_RELOAD_NONE;
	cr_expect_str_eq(text(st), "7/8 workers listening; 12 restarts");
}

Test(status_text, queued_when_a_listener_tells)
{
	struct systemd_status st = { .listening = 8, .wanted = 8,
				     .queued = 0,
				     .reload = SYSTEMD_RELOAD_DONE,
				     .reload_age_ms = 120000 };

	cr_expect_str_eq(text(st), "8/8 workers listening; 0 queued; "
			 "reload done 2m ago");
	st.queued = 17;
	st.reload = SYSTEMD_RELOAD_NONE;
	cr_expect_str_eq(text(st), "8/8 workers listening; 17 queued");
}

Test(status_text, a_small_buffer_is_cut_not_overrun)
{
	struct systemd_status st = { .listening = 4096, .wanted = 4096,
				     .restarts = 99999,
				     .reload = SYSTEMD_RELOAD_STOPPED };
	char buf[24];

	buf[sizeof(buf) - 1] = 'x';
	systemd_status_text(&st, buf, sizeof(buf) - 1);
	cr_expect_eq(buf[sizeof(buf) - 1], 'x', "wrote past the size given");
	cr_expect_eq(strlen(buf), sizeof(buf) - 2);
}
