/**
 * Shutdown on SIGINT/SIGTERM for long-running commands: run the stop function once, exit 0 when it
 * completes, and exit 1 if it hangs or a second signal arrives.
 */
import { createLogger } from '../engine/common/logger.js';

const log = createLogger('cli');
const SHUTDOWN_GRACE_MS = 10_000;

export function stopOnSignals(stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      log.error('shutdown took too long: exiting');
      process.exit(1);
    }, SHUTDOWN_GRACE_MS);
    timer.unref();
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
