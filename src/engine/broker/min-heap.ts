/**
 * A binary min-heap ordered by a caller's comparison: the timer and pop services keep their next
 * deadlines in one so that a single timer, armed for the earliest, serves them all.
 */

/** An item of an IndexedMinHeap: the heap keeps its position there (-1 when not in the heap). */
export interface HeapPositioned {
  heapIndex: number;
}

/**
 * A binary min-heap whose items know their position, so that one can leave it (or move after its
 * key changed) in O(log n). The pop service uses it for lease deadlines: a lease ended by an ack
 * leaves at once instead of staying in the heap until its deadline, which at thousands of acks a
 * second kept tens of thousands of dead entries alive long enough to be promoted and swept.
 */
export class IndexedMinHeap<T extends HeapPositioned> {
  private readonly items: T[] = [];

  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    if (item.heapIndex >= 0) throw new Error('item is already in the heap');
    item.heapIndex = this.items.length;
    this.items.push(item);
    this.siftUp(item.heapIndex);
  }

  /** Takes out the smallest item. */
  pop(): T | undefined {
    const top = this.items[0];
    if (top !== undefined) this.remove(top);
    return top;
  }

  /** Takes the item out wherever it is; no-op when it is not in the heap. */
  remove(item: T): void {
    const at = item.heapIndex;
    if (at < 0) return;
    item.heapIndex = -1;
    const items = this.items;
    const last = items.pop() as T;
    if (at === items.length) return;
    items[at] = last;
    last.heapIndex = at;
    this.reposition(at);
  }

  /** Restores the order after the item's key changed (pushes it when it is not in the heap). */
  update(item: T): void {
    if (item.heapIndex < 0) this.push(item);
    else this.reposition(item.heapIndex);
  }

  clear(): void {
    for (const item of this.items) item.heapIndex = -1;
    this.items.length = 0;
  }

  private reposition(at: number): void {
    const parent = (at - 1) >> 1;
    if (at > 0 && this.before(this.items[at] as T, this.items[parent] as T)) this.siftUp(at);
    else this.siftDown(at);
  }

  private siftUp(start: number): void {
    const items = this.items;
    const item = items[start] as T;
    let at = start;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      const above = items[parent] as T;
      if (!this.before(item, above)) break;
      items[at] = above;
      above.heapIndex = at;
      at = parent;
    }
    items[at] = item;
    item.heapIndex = at;
  }

  private siftDown(start: number): void {
    const items = this.items;
    const item = items[start] as T;
    let at = start;
    for (;;) {
      const left = 2 * at + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && this.before(items[right] as T, items[left] as T) ? right : left;
      const below = items[child] as T;
      if (!this.before(below, item)) break;
      items[at] = below;
      below.heapIndex = at;
      at = child;
    }
    items[at] = item;
    item.heapIndex = at;
  }
}
