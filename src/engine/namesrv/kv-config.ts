/**
 * The NameServer's namespace/key/value store (RocketMQ KVConfigManager), kept in memory only:
 * RocketMQ persists it to kvConfig.json, but nothing this project serves depends on it surviving a
 * restart (order-topic configuration is its main use and brokers re-register anyway).
 */
export class KvConfigStore {
  private readonly namespaces = new Map<string, Map<string, string>>();

  put(namespace: string, key: string, value: string): void {
    let table = this.namespaces.get(namespace);
    if (table === undefined) {
      table = new Map();
      this.namespaces.set(namespace, table);
    }
    table.set(key, value);
  }

  get(namespace: string, key: string): string | undefined {
    return this.namespaces.get(namespace)?.get(key);
  }

  delete(namespace: string, key: string): void {
    const table = this.namespaces.get(namespace);
    table?.delete(key);
    if (table !== undefined && table.size === 0) this.namespaces.delete(namespace);
  }

  /** Every key of a namespace, or undefined when it has none. */
  list(namespace: string): Map<string, string> | undefined {
    const table = this.namespaces.get(namespace);
    return table === undefined ? undefined : new Map(table);
  }
}
