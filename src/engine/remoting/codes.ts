/**
 * Request and response codes of RocketMQ 4.x remoting (RequestCode.java, ResponseCode.java).
 * Only the codes this project serves or sends are listed.
 */
export const RequestCode = {
  SendMessage: 10,
  PullMessage: 11,
  QueryMessage: 12,
  QueryConsumerOffset: 14,
  UpdateConsumerOffset: 15,
  UpdateAndCreateTopic: 17,
  GetAllTopicConfig: 21,
  GetBrokerRuntimeInfo: 28,
  SearchOffsetByTimestamp: 29,
  GetMaxOffset: 30,
  GetMinOffset: 31,
  GetEarliestMsgStoretime: 32,
  ViewMessageById: 33,
  HeartBeat: 34,
  UnregisterClient: 35,
  ConsumerSendMsgBack: 36,
  EndTransaction: 37,
  GetConsumerListByGroup: 38,
  CheckTransactionState: 39,
  NotifyConsumerIdsChanged: 40,
  LockBatchMq: 41,
  UnlockBatchMq: 42,
  GetKvConfig: 101,
  RegisterBroker: 103,
  UnregisterBroker: 104,
  GetRouteInfoByTopic: 105,
  GetBrokerClusterInfo: 106,
  GetAllTopicListFromNameServer: 206,
  GetConsumeStats: 208,
  DeleteTopicInNamesrv: 216,
  ResetConsumerClientOffset: 220,
  InvokeBrokerToResetOffset: 222,
  GetConsumerRunningInfo: 307,
  SendMessageV2: 310,
  SendBatchMessage: 320,
  QueryConsumeQueue: 321,
  /** RocketMQ 5.x pop (the newest RocketMQ master renumbered these 3442, 3443, 3445). */
  PopMessage: 200050,
  AckMessage: 200051,
  ChangeMessageInvisibleTime: 200053,
  /** RocketMQ 5.x BATCH_ACK_MESSAGE: a BatchAckMessageRequestBody of offset bitsets. */
  BatchAckMessage: 200151,
} as const;

export const ResponseCode = {
  Success: 0,
  SystemError: 1,
  SystemBusy: 2,
  RequestCodeNotSupported: 3,
  FlushDiskTimeout: 10,
  SlaveNotAvailable: 11,
  FlushSlaveTimeout: 12,
  MessageIllegal: 13,
  ServiceNotAvailable: 14,
  VersionNotSupported: 15,
  NoPermission: 16,
  TopicNotExist: 17,
  TopicExistAlready: 18,
  PullNotFound: 19,
  PullRetryImmediately: 20,
  PullOffsetMoved: 21,
  QueryNotFound: 22,
  SubscriptionParseFailed: 23,
  SubscriptionNotExist: 24,
  SubscriptionNotLatest: 25,
  SubscriptionGroupNotExist: 26,
  TransactionShouldCommit: 200,
  TransactionShouldRollback: 201,
  TransactionStateUnknow: 202,
  TransactionStateGroupWrong: 203,
  NoBuyerId: 204,
  NotInCurrentUnit: 205,
  ConsumerNotOnline: 206,
  ConsumeMsgTimeout: 207,
  NoMessage: 208,
  PollingFull: 209,
  PollingTimeout: 210,
} as const;

/** Remoting flag bits: bit 0 marks a response, bit 1 a oneway request. */
export const RPC_TYPE_RESPONSE = 0x1;
export const RPC_ONEWAY = 0x2;

/** Header serialization, the high byte of the header-length word. */
export const SerializeType = { Json: 0, RocketMq: 1 } as const;
export type SerializeType = (typeof SerializeType)[keyof typeof SerializeType];

/** LanguageCode ordinal order in RocketMQ (used by the binary header). */
export const LANGUAGE_CODES = [
  'JAVA', 'CPP', 'DOTNET', 'PYTHON', 'DELPHI', 'ERLANG', 'RUBY', 'OTHER', 'HTTP', 'GO', 'PHP', 'OMS', 'RUST', 'NODE_JS',
] as const; // prettier-ignore
