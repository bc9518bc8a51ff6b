/*
 * test_top.c - `cluster-run ctl top` in a real terminal (a pty driven by
 * python3, every wait with a deadline): it redraws each second with the
 * workers' pids and the connections per second of requests made meanwhile,
 * takes the keyboard unechoed and unbuffered, and ends on q and on Ctrl-C
 * with exit 0 and the terminal as it was (termios, cursor, normal screen).
 * Also: the first request failing (no cluster-run) says so and exits 1.
 */
#include "ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(top, .fini = ops_fini, .timeout = 60);

/*
 * argv: cluster-run, socket, port, the key that ends it, worker pids...
 * Prints "ok FRAMES" or fails with what it saw.
 */
static const char drive_top[] =
	"import os, pty, select, socket, sys, termios, time\n"
	"bin, sock, port, key = sys.argv[1:5]\n"
	"pids = sys.argv[5:]\n"
	"deadline = time.monotonic() + 8\n"
	"pid, fd = pty.fork()\n"
	"if pid == 0:\n"
	"    os.execv(bin, [bin, 'ctl', '--control', sock, 'top'])\n"
	"out = b''\n"
	"def pump(t):\n"
	"    global out\n"
	"    r, _, _ = select.select([fd], [], [], t)\n"
	"    if r:\n"
	"        try:\n"
	"            out += os.read(fd, 65536)\n"
	"        except OSError:\n"
	"            return False\n"
	"    return True\n"
	"def wait_for(cond, what):\n"
	"    while not cond():\n"
	"        left = deadline - time.monotonic()\n"
	"        assert left > 0, 'no %s in: %r' % (what, out[-3000:])\n"
	"        pump(min(left, 0.2))\n"
	"def frame():\n"
	"    return out.rsplit(b'\\x1b[H', 1)[-1].decode(errors='replace')\n"
	"wait_for(lambda: out.count(b'\\x1b[H') >= 1 and "
	"all(p in frame() for p in pids), 'frame with the pids')\n"
	"assert b'\\x1b[?1049h' in out and b'\\x1b[?25l' in out, out[:200]\n"
	"lflag = termios.tcgetattr(fd)[3]\n"
	"assert not lflag & (termios.ICANON | termios.ECHO), 'not raw'\n"
	"for i in range(30):\n"
	"    socket.create_connection(('127.0.0.1', int(port))).recv(100)\n"
	"def busy():\n"
	"    rows = [l.split() for l in frame().splitlines()]\n"
	"    return any(len(r) > 5 and r[1] in pids and r[5] not in ('-', '0')\n"
	"               for r in rows)\n"
	"wait_for(busy, 'frame with conn/s above 0')\n"
	"frames = out.count(b'\\x1b[H')\n"
	"os.write(fd, key.encode().decode('unicode_escape').encode())\n"
	"while True:\n"
	"    assert time.monotonic() < deadline, 'did not end on %r' % key\n"
	"    done, status = os.waitpid(pid, os.WNOHANG)\n"
	"    if done:\n"
	"        break\n"
	"    pump(0.1)\n"
	"while pump(0) and select.select([fd], [], [], 0)[0]:\n"
	"    pass\n"
	"assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status\n"
	"assert out.endswith(b'\\x1b[?25h\\x1b[?1049l'), out[-100:]\n"
	"lflag = termios.tcgetattr(fd)[3]\n"
	"assert lflag & termios.ICANON and lflag & termios.ECHO, 'not restored'\n"
	"print('ok', frames)\n";

static void drive(const char *key)
{
	struct ops_cluster oc;
	struct ops_run r;
	char port[16], pid1[16], pid2[16];

	ops_start(&oc, 2, NULL);
	snprintf(port, sizeof(port), "%d", oc.port);
	snprintf(pid1, sizeof(pid1), "%d", (int)hx_worker_pid(oc.c, 1));
	snprintf(pid2, sizeof(pid2), "%d", (int)hx_worker_pid(oc.c, 2));
	ops_run((const char *[]){ "python3", "-c", drive_top,
				  getenv("CLUSTER_RUN_BIN"), oc.sock, port, key,
				  pid1, pid2, NULL }, NULL, &r);
	hx_pump(oc.c, 0);
	hx_assert(oc.c, ops_exit_code(&r) == 0 && strncmp(r.out, "ok ", 3) == 0,
		  "ctl top in a pty, ended with %s: exit %d\n%s%s", key,
		  ops_exit_code(&r), r.out, r.err);
	cr_log_info("ctl top ended by %s after %s", key, r.out);
	ops_run_free(&r);
}

Test(top, ends_on_q)
{
	drive("q");
}

Test(top, ends_on_ctrl_c)
{
	drive("\\x03");
}

Test(top, no_cluster_run)
{
	struct ops_run r;

	ops_run((const char *[]){ getenv("CLUSTER_RUN_BIN"), "ctl", "--control",
				  ops_path("none.sock"), "top", NULL }, NULL, &r);
	cr_assert(ops_exit_code(&r) == 1 && r.out[0] == '\0' &&
		  strstr(r.err, "no control socket at"),
		  "exit %d, stdout \"%s\", stderr \"%s\"", ops_exit_code(&r),
		  r.out, r.err);
	ops_run_free(&r);
}
