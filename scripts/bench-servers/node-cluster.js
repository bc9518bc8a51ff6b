// node-cluster.js - Node's own cluster module running hello.js's server:
// a primary forks N workers that all listen on the same port.
//
//   NODE_CLUSTER_SCHED_POLICY=rr|none node node-cluster.js --port P [--workers N]
//
// The scheduling policy is Node's: NODE_CLUSTER_SCHED_POLICY is read when the
// cluster module loads (rr: the primary accepts and hands each connection to
// a worker; none: every worker accepts on the shared socket).  X-Worker is
// the cluster worker id.  The primary prints "ready N" on stdout once all
// workers are listening, and takes its workers down on SIGTERM/SIGINT.
'use strict';
const cluster = require('cluster');
const { serve, arg } = require('./hello.js');

const port = Number(arg('--port', NaN));
const host = arg('--host', '127.0.0.1');
const n = Number(arg('--workers', '2'));
if (!Number.isInteger(port) || !(n >= 1)) {
  process.stderr.write('usage: node node-cluster.js --port P [--workers N]\n');
  process.exit(2);
}

if (cluster.isPrimary) {
  let listening = 0;
  let stopping = false;
  cluster.on('listening', () => {
    if (++listening === n) process.stdout.write(`ready ${n}\n`);
  });
  cluster.on('exit', (w, code, sig) => {
    if (!stopping) {
      process.stderr.write(`node-cluster: worker ${w.id} died (${sig || code})\n`);
      process.exitCode = 1;
    }
    if (Object.keys(cluster.workers).length === 0) process.exit();
  });
  const stop = () => {
    stopping = true;
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  for (let i = 0; i < n; i++) cluster.fork();
} else {
  serve(port, host, cluster.worker.id);
}
