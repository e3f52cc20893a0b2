import { pino, type Logger as PinoLogger } from 'pino';

/**
 * The engine's logger. Level from RB_LOG_LEVEL; under `node --test` the default is `warn` so that test
 * output stays readable.
 */
export type Logger = PinoLogger;

const defaultLevel = process.env['RB_LOG_LEVEL'] ?? (process.env['NODE_TEST_CONTEXT'] ? 'warn' : 'info');

export const rootLogger: Logger = pino({ level: defaultLevel, base: { pid: process.pid } });

export function createLogger(component: string): Logger {
  return rootLogger.child({ component });
}
