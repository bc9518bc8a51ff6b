"""sio_server.py HOST PORT - an unmodified python-socketio server (threading
mode, long polling) that keeps its sessions in memory: an "echo" event is
answered with the same number and the pid of the process that holds the
session.  Served by a threading WSGI server of the standard library, which
closes every connection after one request (HTTP/1.0), so each poll of a
client is a new connection for cluster-run to deal."""
import os
import socketserver
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import socketio

sio = socketio.Server(async_mode="threading")


@sio.on("echo")
def echo(sid, data):
    sio.emit("echo", {"n": data["n"], "pid": os.getpid()}, to=sid)


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    # socketserver's default backlog of 5 overflows under 20 clients on a
    # loaded machine, alone as under cluster-run (which listens with the
    # server's backlog): SYN cookies, dropped ACKs, and a client's request
    # reset or timed out (1-4 of 20 clients a run, the server alone)
    request_queue_size = 128


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    server = make_server(host, port, socketio.WSGIApp(sio),
                         ThreadingWSGIServer, QuietHandler)
    server.serve_forever()


if __name__ == "__main__":
    main()
