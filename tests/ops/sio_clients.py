"""sio_clients.py PORT CLIENTS MESSAGES SOURCES [FORWARDED] - socket.io
clients over raw Engine.IO v4 long polling (http.client, one connection per
request), each on its own thread, each from loopback source address
127.0.0.(2 + i % SOURCES).  Each connects, sends MESSAGES "echo" events one
by one and waits for each answer.  A client stops at its first error (a
non-200 answer such as socket.io's 400 "Session ID unknown", a wrong
answer, a broken connection).  With FORWARDED, every request also carries
"X-Forwarded-For: 10.9.0.<i>" (the client behind a proxy).

Prints one line per client, "client I pids P1,P2 ok N" or "client I error
WHAT", then "clients C messages M errors E pids K": M answers received in
all, E clients that failed, K distinct worker pids seen."""
import http.client
import json
import sys
import threading

RS = "\x1e"  # Engine.IO v4 packet separator in a polling payload
TIMEOUT_S = 10


class Client:
    def __init__(self, port, index, sources, forwarded):
        self.port = port
        self.source = "127.0.0.%d" % (2 + index % sources)
        self.headers = {}
        if forwarded:
            self.headers["X-Forwarded-For"] = "10.9.0.%d" % index
        self.sid = None
        self.pending = []

    def request(self, method, body=None):
        query = "EIO=4&transport=polling"
        if self.sid:
            query += "&sid=" + self.sid
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=TIMEOUT_S,
                                          source_address=(self.source, 0))
        try:
            headers = dict(self.headers)
            if body is not None:
                headers["Content-Type"] = "text/plain;charset=UTF-8"
            conn.request(method, "/socket.io/?" + query, body=body,
                         headers=headers)
            resp = conn.getresponse()
            data = resp.read().decode()
        finally:
            conn.close()
        if resp.status != 200:
            raise RuntimeError("%s: %d %s" % (method, resp.status, data[:80]))
        return data

    def packet(self):
        """The next Engine.IO packet the server sends (pongs pings)."""
        while not self.pending:
            self.pending = self.request("GET").split(RS)
            pings = [p for p in self.pending if p == "2"]
            self.pending = [p for p in self.pending if p != "2"]
            for _ in pings:
                self.request("POST", "3")
        return self.pending.pop(0)

    def run(self, messages):
        opened = self.packet()
        if not opened.startswith("0"):
            raise RuntimeError("open: " + opened[:80])
        self.sid = json.loads(opened[1:])["sid"]
        self.request("POST", "40")
        ack = self.packet()
        if not ack.startswith("40"):
            raise RuntimeError("connect: " + ack[:80])
        pids = []
        for n in range(messages):
            self.request("POST", "42" + json.dumps(["echo", {"n": n}]))
            answer = self.packet()
            if not answer.startswith("42"):
                raise RuntimeError("answer: " + answer[:80])
            event, data = json.loads(answer[2:])
            if event != "echo" or data["n"] != n:
                raise RuntimeError("wrong answer: " + answer[:80])
            if data["pid"] not in pids:
                pids.append(data["pid"])
        return pids


def main():
    port, clients, messages, sources = (int(a) for a in sys.argv[1:5])
    forwarded = len(sys.argv) > 5 and sys.argv[5] == "FORWARDED"
    results = [None] * clients

    def one(i):
        try:
            pids = Client(port, i, sources, forwarded).run(messages)
            results[i] = ("ok", pids, messages)
        except Exception as e:  # every failure is the client's result
            results[i] = ("error", str(e).replace("\n", " "), 0)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seen, answered, errors = set(), 0, 0
    for i, (what, detail, n) in enumerate(results):
        if what == "ok":
            seen.update(detail)
            answered += n
            print("client %d pids %s ok %d" %
                  (i, ",".join(str(p) for p in detail), n))
        else:
            errors += 1
            print("client %d error %s" % (i, detail))
    print("clients %d messages %d errors %d pids %d" %
          (clients, answered, errors, len(seen)))


if __name__ == "__main__":
    main()
