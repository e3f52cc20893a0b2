/**
 * The NameServer's request processors (RocketMQ DefaultRequestProcessor): header parsing, body
 * decoding and response building for each request code. The route table itself is
 * route-info-manager.ts; sockets are the remoting server's.
 */
import { crc32 } from 'node:zlib';
import { isRbError } from '../common/errors.js';
import { parseHostAddress } from '../common/host-address.js';
import type { Logger } from '../common/logger.js';
import type { ProcessorRegistry, RequestProcessor } from '../remoting/channel.js';
import { RequestCode, ResponseCode } from '../remoting/codes.js';
import { createResponse } from '../remoting/command.js';
import {
  answerHeaderErrors,
  HeaderFieldError,
  optionalBoolean,
  optionalInt,
  optionalString,
  requiredLong,
  requiredString,
} from '../remoting/header-fields.js';
import {
  decodeRegisterBrokerBody,
  encodeClusterInfo,
  encodeTopicList,
  encodeTopicRouteData,
  jsonStyleFor,
  type RegisterBrokerBody,
} from '../remoting/route-data.js';
import type { KvConfigStore } from './kv-config.js';
import type { RouteInfoManager } from './route-info-manager.js';

/** NameServer-only request codes not in codes.ts (RequestCode.java). */
export const NamesrvRequestCode = {
  PutKvConfig: 100,
  DeleteKvConfig: 102,
  GetKvListByNamespace: 219,
} as const;

export interface NamesrvProcessorDeps {
  routes: RouteInfoManager;
  kv: KvConfigStore;
  log: Logger;
}

/** A name from a header that must be non-empty (broker name, cluster name, topic). */
export function requiredName(request: Parameters<RequestProcessor>[0], field: string): string {
  const value = requiredString(request, field);
  if (value.length === 0) throw new HeaderFieldError(field, `header field "${field}" is empty`);
  return value;
}

/** A "host:port" from a header (broker addresses). */
export function requiredAddress(request: Parameters<RequestProcessor>[0], field: string): string {
  const value = requiredString(request, field);
  try {
    parseHostAddress(value);
  } catch {
    throw new HeaderFieldError(field, `header field "${field}" is not host:port: "${value.slice(0, 64)}"`);
  }
  return value;
}

function registerBroker(deps: NamesrvProcessorDeps): RequestProcessor {
  return (request, channel) => {
    const brokerName = requiredName(request, 'brokerName');
    const brokerAddr = requiredAddress(request, 'brokerAddr');
    const clusterName = requiredName(request, 'clusterName');
    const haServerAddr = optionalString(request, 'haServerAddr') ?? '';
    const brokerId = requiredLong(request, 'brokerId');
    if (brokerId < 0) throw new HeaderFieldError('brokerId', `header field "brokerId" is negative: ${brokerId}`);
    if (optionalBoolean(request, 'compressed', false)) {
      return createResponse(
        request,
        ResponseCode.SystemError,
        'compressed broker registration is not supported by this NameServer; set compressedRegister=false on the broker',
      );
    }
    // RocketMQ checks the body against bodyCrc32 (UtilAll.crc32, 31 bits) when the broker sends one.
    const bodyCrc32 = optionalInt(request, 'bodyCrc32', 0);
    if (bodyCrc32 !== 0 && request.body !== undefined && (crc32(request.body) & 0x7fffffff) !== bodyCrc32) {
      return createResponse(request, ResponseCode.SystemError, 'crc32 not match');
    }
    let body: RegisterBrokerBody;
    try {
      body = decodeRegisterBrokerBody(request.body);
    } catch (err) {
      if (!isRbError(err)) throw err;
      deps.log.warn(
        { brokerName, brokerAddr, peer: channel.remoteAddress, detail: err.message },
        'bad broker registration',
      );
      return createResponse(request, ResponseCode.SystemError, err.message);
    }
    const result = deps.routes.registerBroker({
      clusterName,
      brokerAddr,
      brokerName,
      brokerId,
      haServerAddr,
      topicConfigs: Object.values(body.topicConfigSerializeWrapper.topicConfigTable),
      dataVersion: body.topicConfigSerializeWrapper.dataVersion,
      filterServerList: body.filterServerList,
      channel,
    });
    const extFields: Record<string, string> = {};
    if (result.haServerAddr !== undefined) extFields['haServerAddr'] = result.haServerAddr;
    if (result.masterAddr !== undefined) extFields['masterAddr'] = result.masterAddr;
    return createResponse(request, ResponseCode.Success, undefined, extFields);
  };
}

function unregisterBroker(deps: NamesrvProcessorDeps): RequestProcessor {
  return (request) => {
    deps.routes.unregisterBroker(
      requiredName(request, 'clusterName'),
      requiredString(request, 'brokerAddr'),
      requiredName(request, 'brokerName'),
      requiredLong(request, 'brokerId'),
    );
    return createResponse(request, ResponseCode.Success);
  };
}

function getRouteInfoByTopic(deps: NamesrvProcessorDeps): RequestProcessor {
  return (request) => {
    const topic = requiredString(request, 'topic');
    const route = deps.routes.pickupTopicRouteData(topic);
    if (route === undefined) {
      return createResponse(
        request,
        ResponseCode.TopicNotExist,
        `No topic route info in name server for the topic: ${topic}`,
      );
    }
    return createResponse(
      request,
      ResponseCode.Success,
      undefined,
      {},
      encodeTopicRouteData(route, jsonStyleFor(request.language)),
    );
  };
}

function getBrokerClusterInfo(deps: NamesrvProcessorDeps): RequestProcessor {
  return (request) =>
    createResponse(
      request,
      ResponseCode.Success,
      undefined,
      {},
      encodeClusterInfo(deps.routes.getClusterInfo(), jsonStyleFor(request.language)),
    );
}

function getAllTopicList(deps: NamesrvProcessorDeps): RequestProcessor {
  return (request) =>
    createResponse(request, ResponseCode.Success, undefined, {}, encodeTopicList(deps.routes.getTopicList()));
}

function deleteTopic(deps: NamesrvProcessorDeps): RequestProcessor {
  return (request) => {
    const topic = requiredString(request, 'topic');
    const clusterName = optionalString(request, 'clusterName');
    deps.routes.deleteTopic(topic, clusterName);
    deps.log.info({ topic, clusterName }, 'topic deleted from NameServer');
    return createResponse(request, ResponseCode.Success);
  };
}

function putKvConfig(deps: NamesrvProcessorDeps): RequestProcessor {
  return (request) => {
    deps.kv.put(requiredString(request, 'namespace'), requiredString(request, 'key'), requiredString(request, 'value'));
    return createResponse(request, ResponseCode.Success);
  };
}

function getKvConfig(deps: NamesrvProcessorDeps): RequestProcessor {
  return (request) => {
    const namespace = requiredString(request, 'namespace');
    const key = requiredString(request, 'key');
    const value = deps.kv.get(namespace, key);
    if (value === undefined) {
      return createResponse(request, ResponseCode.QueryNotFound, `No config item, Namespace: ${namespace} Key: ${key}`);
    }
    return createResponse(request, ResponseCode.Success, undefined, { value });
  };
}

function deleteKvConfig(deps: NamesrvProcessorDeps): RequestProcessor {
  return (request) => {
    deps.kv.delete(requiredString(request, 'namespace'), requiredString(request, 'key'));
    return createResponse(request, ResponseCode.Success);
  };
}

function getKvListByNamespace(deps: NamesrvProcessorDeps): RequestProcessor {
  return (request) => {
    const namespace = requiredString(request, 'namespace');
    const table = deps.kv.list(namespace);
    if (table === undefined) {
      return createResponse(request, ResponseCode.QueryNotFound, `No config item, Namespace: ${namespace}`);
    }
    // KVTable: {"table":{key:value}}
    const body = Buffer.from(JSON.stringify({ table: Object.fromEntries(table) }), 'utf8');
    return createResponse(request, ResponseCode.Success, undefined, {}, body);
  };
}

/** Registers every NameServer processor on `registry`. */
export function registerNamesrvProcessors(registry: ProcessorRegistry, deps: NamesrvProcessorDeps): void {
  const table: Array<[number, RequestProcessor]> = [
    [RequestCode.RegisterBroker, registerBroker(deps)],
    [RequestCode.UnregisterBroker, unregisterBroker(deps)],
    [RequestCode.GetRouteInfoByTopic, getRouteInfoByTopic(deps)],
    [RequestCode.GetBrokerClusterInfo, getBrokerClusterInfo(deps)],
    [RequestCode.GetAllTopicListFromNameServer, getAllTopicList(deps)],
    [RequestCode.DeleteTopicInNamesrv, deleteTopic(deps)],
    [RequestCode.GetKvConfig, getKvConfig(deps)],
    [NamesrvRequestCode.PutKvConfig, putKvConfig(deps)],
    [NamesrvRequestCode.DeleteKvConfig, deleteKvConfig(deps)],
    [NamesrvRequestCode.GetKvListByNamespace, getKvListByNamespace(deps)],
  ];
  for (const [code, processor] of table) registry.register(code, answerHeaderErrors(processor));
}
