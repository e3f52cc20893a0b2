/**
 * Queue allocation for clustering consumers (RocketMQ AllocateMessageQueueAveragely): every member
 * sorts the group's client ids and the topic's queues the same way, so each computes its own
 * contiguous share without talking to the others.
 */
import { compareQueues, type MessageQueue } from './route.js';

/** The queues `clientId` owns among `clientIds`; nothing when it is not (yet) a member. */
export function allocateAveragely(
  clientId: string,
  clientIds: readonly string[],
  queues: readonly MessageQueue[],
): MessageQueue[] {
  const members = [...new Set(clientIds)].sort();
  const sortedQueues = [...queues].sort(compareQueues);
  const index = members.indexOf(clientId);
  if (index < 0 || sortedQueues.length === 0) return [];
  const queueCount = sortedQueues.length;
  const memberCount = members.length;
  const remainder = queueCount % memberCount;
  const averageSize =
    queueCount <= memberCount
      ? 1
      : remainder > 0 && index < remainder
        ? Math.floor(queueCount / memberCount) + 1
        : Math.floor(queueCount / memberCount);
  const startIndex = remainder > 0 && index < remainder ? index * averageSize : index * averageSize + remainder;
  const range = Math.min(averageSize, queueCount - startIndex);
  const result: MessageQueue[] = [];
  for (let i = 0; i < range; i++) {
    const queue = sortedQueues[(startIndex + i) % queueCount];
    if (queue !== undefined) result.push(queue);
  }
  return result;
}
