/**
 * Invariant checks that stay on in production (TigerStyle): an impossible state throws at once
 * instead of corrupting stored data later.
 */
export class InvariantError extends Error {
  override readonly name = 'InvariantError';
}

export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantError(message);
}
