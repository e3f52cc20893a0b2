/**
 * The epoch history of a broker's CommitLog (RocketMQ 5 EpochFileCache): one entry per epoch in which
 * a master wrote, saying at which CommitLog offset its writes began. A master appends an entry when it
 * is elected; a slave mirrors its master's entries. Two logs with the same history agree byte for
 * byte up to the end of the last epoch they share, which is where a rejoining old master cuts its log
 * (lastConsistentOffset) before it follows the new master.
 */
import { readJsonFile, writeFileAtomic } from '../../common/atomic-file.js';

export interface EpochEntry {
  epoch: number;
  startOffset: number;
}

/** GET_BROKER_EPOCH_CACHE: what a master tells a slave about its log. */
export interface EpochCacheBody {
  epochs: EpochEntry[];
  minOffset: number;
  maxOffset: number;
}

export const GET_BROKER_EPOCH_CACHE = 1007;

export class EpochCache {
  private entries: EpochEntry[];

  constructor(private readonly file: string) {
    const loaded = readJsonFile<{ epochs?: unknown }>(file);
    this.entries = sanitizeEpochs(loaded?.epochs) ?? [];
  }

  all(): EpochEntry[] {
    return this.entries.map((entry) => ({ ...entry }));
  }

  /** The newest epoch (0 with none). */
  get lastEpoch(): number {
    return this.entries[this.entries.length - 1]?.epoch ?? 0;
  }

  /** A master elected for `epoch` starts writing at `startOffset`; persisted before it takes writes. */
  append(epoch: number, startOffset: number): void {
    const last = this.entries[this.entries.length - 1];
    if (last !== undefined && last.epoch >= epoch) return;
    this.entries.push({ epoch, startOffset });
    this.save();
  }

  /** A slave adopts its master's history (after cutting its log to agree with it). */
  replaceWith(entries: readonly EpochEntry[]): void {
    this.entries = entries.map((entry) => ({ ...entry }));
    this.save();
  }

  private save(): void {
    writeFileAtomic(this.file, JSON.stringify({ epochs: this.entries }));
  }
}

/** Entries in increasing epoch and offset order, or undefined when the input is not that. */
export function sanitizeEpochs(value: unknown): EpochEntry[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const entries: EpochEntry[] = [];
  for (const item of value as unknown[]) {
    if (typeof item !== 'object' || item === null) return undefined;
    const { epoch, startOffset } = item as Record<string, unknown>;
    if (!Number.isSafeInteger(epoch) || !Number.isSafeInteger(startOffset)) return undefined;
    const entry = { epoch: epoch as number, startOffset: startOffset as number };
    const previous = entries[entries.length - 1];
    if (entry.epoch < 1 || entry.startOffset < 0) return undefined;
    if (previous !== undefined && (entry.epoch <= previous.epoch || entry.startOffset < previous.startOffset)) {
      return undefined;
    }
    entries.push(entry);
  }
  return entries;
}

/**
 * Where a local log stops agreeing with a master's: the end of the newest epoch both histories hold
 * (the next entry's start, or the log's max offset), the smaller of the two ends. Without a shared
 * epoch (a slave that never recorded one) the local log is trusted up to the master's max offset.
 */
export function lastConsistentOffset(
  local: readonly EpochEntry[],
  localMaxOffset: number,
  master: readonly EpochEntry[],
  masterMaxOffset: number,
): number {
  for (let i = local.length - 1; i >= 0; i--) {
    const entry = local[i] as EpochEntry;
    const j = master.findIndex((candidate) => candidate.epoch === entry.epoch);
    if (j < 0) continue;
    if ((master[j] as EpochEntry).startOffset !== entry.startOffset) continue;
    const localEnd = local[i + 1]?.startOffset ?? localMaxOffset;
    const masterEnd = master[j + 1]?.startOffset ?? masterMaxOffset;
    return Math.min(localEnd, masterEnd, localMaxOffset);
  }
  if (local.length > 0 && master.length > 0) {
    // Histories with nothing in common: nothing local can be trusted past the master's first epoch.
    return Math.min(localMaxOffset, (master[0] as EpochEntry).startOffset);
  }
  return Math.min(localMaxOffset, masterMaxOffset);
}
