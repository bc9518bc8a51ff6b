"""pidserver.py KIND HOST PORT - an http.server handler that answers every
GET with "<pid> <ppid>\n" (HTTP/1.0, then the connection closes).

KIND picks the server class around it:
  threading  http.server.ThreadingHTTPServer (a thread per connection)
  forking    socketserver.ForkingTCPServer (poll, then a blocking accept,
             then a fork per connection: the child answers, so its ppid is
             the worker)
  subprocess ThreadingHTTPServer that runs subprocess.run() once after it
             listens (CPython starts the child with vfork() and closes
             every fd in it with close_range())
"""
import http.server
import os
import socketserver
import subprocess
import sys


class PidHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("%d %d\n" % (os.getpid(), os.getppid())).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


def main():
    kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    classes = {
        "threading": http.server.ThreadingHTTPServer,
        "forking": socketserver.ForkingTCPServer,
        "subprocess": http.server.ThreadingHTTPServer,
    }
    with classes[kind]((host, port), PidHandler) as server:
        if kind == "subprocess":
            subprocess.run(["/bin/true"], check=True, close_fds=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
