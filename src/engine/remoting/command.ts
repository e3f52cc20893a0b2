/**
 * A RocketMQ remoting command (RemotingCommand.java): the unit of every request and response.
 */
import { RPC_ONEWAY, RPC_TYPE_RESPONSE, SerializeType } from './codes.js';

export interface RemotingCommand {
  code: number;
  /** The sender's language, e.g. "JAVA", "GO", "NODE_JS"; we send "JAVA" for compatibility. */
  language: string;
  version: number;
  /** Matches a response to its request. */
  opaque: number;
  flag: number;
  remark?: string;
  /** Custom header fields; on the wire every value is a string. */
  extFields: Record<string, string>;
  body?: Buffer;
  /** How the header was (or will be) serialized; a response uses its request's type. */
  serializeType: SerializeType;
}

/** RocketMQ 4.9's version number (MQVersion.Version.V4_9_4 ordinal). */
export const OUR_VERSION = 433;

let nextOpaque = 1;

export function createRequest(code: number, extFields: Record<string, string> = {}, body?: Buffer): RemotingCommand {
  const command: RemotingCommand = {
    code,
    language: 'JAVA',
    version: OUR_VERSION,
    opaque: nextOpaque++,
    flag: 0,
    extFields,
    serializeType: SerializeType.Json,
  };
  if (nextOpaque > 0x7fffffff) nextOpaque = 1;
  if (body !== undefined) command.body = body;
  return command;
}

export function createResponse(
  request: RemotingCommand,
  code: number,
  remark?: string,
  extFields: Record<string, string> = {},
  body?: Buffer,
): RemotingCommand {
  const response: RemotingCommand = {
    code,
    language: 'JAVA',
    version: OUR_VERSION,
    opaque: request.opaque,
    flag: RPC_TYPE_RESPONSE,
    extFields,
    serializeType: request.serializeType,
  };
  if (remark !== undefined) response.remark = remark;
  if (body !== undefined) response.body = body;
  return response;
}

export function isResponse(command: RemotingCommand): boolean {
  return (command.flag & RPC_TYPE_RESPONSE) !== 0;
}

export function isOneway(command: RemotingCommand): boolean {
  return (command.flag & RPC_ONEWAY) !== 0;
}

export function markOneway(command: RemotingCommand): RemotingCommand {
  command.flag |= RPC_ONEWAY;
  return command;
}
