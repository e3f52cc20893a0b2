/**
 * Ports for servers that a test restarts on the same port. Port 0 hands out a port from the kernel's
 * ephemeral range, and once that server closes, any outgoing connection on the machine (another test
 * file running in parallel) may take the number as its local port, so listening on it again fails
 * with EADDRINUSE. Ports below the ephemeral range (Linux: 32768 and up) are never taken that way.
 */
import { createServer } from 'node:net';

const FIRST_PORT = 20_000;
const PORT_COUNT = 12_000;

async function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/** A free port below the ephemeral range, safe to listen on again after a restart. */
export async function restartablePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = FIRST_PORT + Math.floor(Math.random() * PORT_COUNT);
    if (await isFree(port)) return port;
  }
  throw new Error('no free port found below the ephemeral range');
}
