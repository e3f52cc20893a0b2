#!/usr/bin/env -S node --single-threaded-gc --no-allocation-site-pretenuring
/**
 * The `rocketbridge` command. Each sub-command lives in its own module and is registered here.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { setLogLevel } from '../engine/common/logger.js';
import { commands } from './commands.js';

const cli = yargs(hideBin(process.argv))
  .scriptName('rocketbridge')
  .usage('$0 <command> [options]')
  .strict()
  .demandCommand(1, 'Name a command; see --help.')
  .env('RB')
  .option('log-level', {
    type: 'string',
    choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    describe: 'Log level (also RB_LOG_LEVEL)',
  })
  .option('log-format', {
    type: 'string',
    choices: ['pretty', 'json'],
    describe: 'RB_LOG_FORMAT=json forces JSON lines on a terminal; pretty is the terminal default',
  })
  .middleware((args) => {
    if (typeof args['log-level'] === 'string') setLogLevel(args['log-level']);
  })
  .recommendCommands()
  .help()
  .alias('help', 'h')
  .version()
  .wrap(Math.min(120, process.stdout.columns || 100))
  .fail((message, error, y) => {
    if (error) {
      console.error(`rocketbridge: ${error.message}`);
    } else {
      console.error(y.help().toString());
      console.error(`\nrocketbridge: ${message}`);
    }
    process.exit(2);
  });

for (const command of commands) cli.command(command);

await cli.parseAsync();
