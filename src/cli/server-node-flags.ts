/**
 * Node options a rocketbridge server runs with. The `rocketbridge` command's shebang and `npm start`
 * pass them, and the benchmarks start their rocketbridge server children with them, so that what is
 * measured is what users run (test/unit/cli/server-node-flags.test.ts checks that the three agree).
 * They cannot be set from inside the process: V8 reads them at start, and `NODE_OPTIONS` refuses them.
 *
 * --single-threaded-gc: V8 collects garbage on the main thread alone. A broker's heap is small (tens
 * of MB), and with parallel collection the main thread waits, at the end of each collection, for
 * helper threads that compete for the cores with the clients and the thread pool; on a 2-core machine
 * that wait became multi-millisecond stalls. Measured with both settings in the same runs: AMQP p99
 * publish-to-delivery at 2,000 msgs/s 7.5-8.8 ms -> 4.5-6.3 ms, batched sends 103k -> 115k msgs/s.
 * Users with many idle cores can run `node dist/src/cli/main.js` without it.
 *
 * --no-allocation-site-pretenuring: V8 watches where objects are allocated, and when most objects of
 * one allocation site survive a young collection it allocates that site's objects in the old
 * generation from then on, for good. A burst (a backlog behind a slow consumer, a bulk load) makes
 * the sites of per-message objects look long-lived; once the burst is over they still start old, so
 * every young object they point at survives the scavenges and is promoted, and the broker stays in
 * a state of slow scavenges and frequent mark-compacts. Measured on the AMQP server at 2,000 msgs/s
 * after a 20,000-message burst: with pretenuring, scavenges of 4.1-4.4 ms copying ~500 KB with a
 * mark-compact every ~0.5 s; without, 1.4-1.6 ms, ~80-115 KB, no mark-compact. p99 publish-to-delivery
 * in the same runs: 5.2 / 5.2 / 5.4 ms -> 4.0 / 3.3 / 3.0 ms.
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--single-threaded-gc', '--no-allocation-site-pretenuring'];
