/**
 * Polls `check` until it returns without throwing (and, if it returns a boolean, returns true), or
 * the timeout passes; then throws the last failure. Tests wait with this, never a bare sleep.
 */
export async function eventually<T>(
  check: () => T | Promise<T>,
  { timeoutMs = 5000, intervalMs = 20 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = new Error('condition never checked');
  for (;;) {
    try {
      const result = await check();
      if (result !== false) return result;
      lastError = new Error('condition still false');
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const message = lastError instanceof Error ? lastError.message : String(lastError);
      throw new Error(`eventually: gave up after ${timeoutMs} ms: ${message}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
