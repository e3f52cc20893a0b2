import type { CommandModule } from 'yargs';
import { adminCommand } from './admin-command.js';
import { brokerCommand } from './broker-command.js';
import { gatewayCommand } from './gateway-command.js';
import { namesrvCommand } from './namesrv-command.js';
import { startCommand } from './start-command.js';

/** Every sub-command of `rocketbridge`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [
  startCommand,
  namesrvCommand,
  brokerCommand,
  gatewayCommand,
  adminCommand,
];
