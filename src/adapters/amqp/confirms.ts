/**
 * Publisher confirms of one channel, coalesced the way RabbitMQ sends them: the stores of one turn
 * settle together, and instead of one basic.ack per message the channel sends one basic.ack with
 * `multiple` for the run of acknowledged sequence numbers that starts at the lowest unconfirmed one.
 * A client then parses one frame and settles its whole window at once (amqplib, the Java client
 * and pika all treat `multiple` as "every unconfirmed tag up to this one").
 *
 * Every tag is still confirmed exactly once, as its store settled: everything below a run's first
 * tag was confirmed before, so a multiple ack confirms just the run, which holds acks only; nacks go
 * out one by one; a tag that settles above an unsettled one is not held back (that would tie its
 * latency to a slower store) but confirmed alone, and the run that later reaches it stops before it.
 */
import { ChurnMap } from '../../engine/common/churn-map.js';

export type ConfirmMethod =
  | { name: 'basic.ack'; deliveryTag: number; multiple: boolean }
  | { name: 'basic.nack'; deliveryTag: number; multiple: false; requeue: false };

export class ConfirmCoalescer {
  /** Settled tags not yet sent, true for ack, false for nack. */
  private readonly settled = new ChurnMap<number, boolean>();
  /** Tags sent alone while a lower tag was unsettled. */
  private readonly sentAhead = new ChurnMap<number, true>();
  /** Every tag below this one has been sent. */
  private lowestUnsent = 1;

  get pending(): boolean {
    return this.settled.size > 0;
  }

  settle(deliveryTag: number, acked: boolean): void {
    if (deliveryTag >= this.lowestUnsent) this.settled.set(deliveryTag, acked);
  }

  /** The methods that confirm everything settled so far, in order; clears it. */
  drain(): ConfirmMethod[] {
    const methods: ConfirmMethod[] = [];
    let runStart = 0;
    let runEnd = 0;
    const endRun = (): void => {
      if (runEnd === 0) return;
      methods.push({ name: 'basic.ack', deliveryTag: runEnd, multiple: runEnd > runStart });
      runEnd = 0;
    };
    // From the lowest unsent tag up while settled: acks form runs, nacks and tags sent ahead end them.
    for (;;) {
      const tag = this.lowestUnsent;
      if (this.sentAhead.delete(tag)) {
        endRun();
        this.lowestUnsent++;
        continue;
      }
      const acked = this.settled.get(tag);
      if (acked === undefined) break;
      this.settled.delete(tag);
      this.lowestUnsent++;
      if (acked) {
        if (runEnd === 0) runStart = tag;
        runEnd = tag;
      } else {
        endRun();
        methods.push({ name: 'basic.nack', deliveryTag: tag, multiple: false, requeue: false });
      }
    }
    endRun();
    // Above the first unsettled tag: alone, and remembered so no later run covers them again.
    for (const tag of this.settledTags()) {
      const acked = this.settled.get(tag) as boolean;
      this.settled.delete(tag);
      this.sentAhead.set(tag, true);
      methods.push(
        acked
          ? { name: 'basic.ack', deliveryTag: tag, multiple: false }
          : { name: 'basic.nack', deliveryTag: tag, multiple: false, requeue: false },
      );
    }
    return methods;
  }

  /** The settled tags left, ascending. */
  private settledTags(): number[] {
    return this.settled
      .keyStrings()
      .map(Number)
      .sort((a, b) => a - b);
  }
}
