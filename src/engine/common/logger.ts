import { pino, type Logger as PinoLogger } from 'pino';
import { PinoPretty } from 'pino-pretty';

/**
 * The engine's logger. Level from RB_LOG_LEVEL; under `node --test` the default is `warn` so that test
 * output stays readable. On a terminal the lines are pretty-printed for people; elsewhere (or with
 * RB_LOG_FORMAT=json) they are JSON lines for machines.
 */
export type Logger = PinoLogger;

const defaultLevel = process.env['RB_LOG_LEVEL'] ?? (process.env['NODE_TEST_CONTEXT'] ? 'warn' : 'info');
const pretty = process.stdout.isTTY === true && process.env['RB_LOG_FORMAT'] !== 'json';

export const rootLogger: Logger = pretty
  ? pino(
      { level: defaultLevel },
      PinoPretty({
        colorize: true,
        singleLine: true,
        translateTime: 'SYS:HH:MM:ss.l',
        messageFormat: '[{component}] {msg}',
        ignore: 'pid,hostname,component',
        sync: true,
      }),
    )
  : pino({ level: defaultLevel, base: { pid: process.pid } });

const componentLoggers: Logger[] = [];

export function createLogger(component: string): Logger {
  const logger = rootLogger.child({ component });
  componentLoggers.push(logger);
  return logger;
}

/** Changes the level of every logger (pino children keep the level they were created with). */
export function setLogLevel(level: string): void {
  rootLogger.level = level;
  for (const logger of componentLoggers) logger.level = level;
}
