import type { CommandModule } from 'yargs';

/** Every sub-command. Commands that start servers arrive with the issues that build them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [];
