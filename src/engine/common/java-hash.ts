/**
 * Java's `String.hashCode()` over UTF-16 code units, as a signed 32-bit integer. RocketMQ uses it for
 * the ConsumeQueue tag hash code (sign-extended to 64 bits) and for IndexFile key slots.
 */
export function javaStringHashCode(text: string): number {
  let hash = 0;
  for (let i = 0; i < text.length; i++) {
    hash = (Math.imul(31, hash) + text.charCodeAt(i)) | 0;
  }
  return hash;
}
