// hello.js - the benchmark's hello-world HTTP server for Node, one process.
//
//   node hello.js --port P [--host 127.0.0.1]
//
// Answers every request with "Hello\n" (Content-Length set by us) and an
// X-Worker header: $CLUSTER_WORKER_ID when cluster-run set it, else the pid.
// Node's http module honours keep-alive and "Connection: close" itself.
'use strict';
const http = require('http');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

function serve(port, host, workerId) {
  const body = 'Hello\n';
  const headers = {
    'Content-Type': 'text/plain',
    'Content-Length': Buffer.byteLength(body),
    'X-Worker': String(workerId),
  };
  const server = http.createServer((req, res) => {
    res.writeHead(200, headers);
    res.end(body);
  });
  server.listen(port, host, () => {
    process.stderr.write(`hello.js: pid ${process.pid} worker ${workerId} ` +
                         `listening on ${host}:${server.address().port}\n`);
  });
  return server;
}

module.exports = { serve, arg };

if (require.main === module) {
  const port = Number(arg('--port', NaN));
  if (!Number.isInteger(port)) {
    process.stderr.write('usage: node hello.js --port P [--host ADDR]\n');
    process.exit(2);
  }
  serve(port, arg('--host', '127.0.0.1'),
        process.env.CLUSTER_WORKER_ID || process.pid);
}
