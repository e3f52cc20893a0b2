/**
 * JSON bodies from Java clients are written by fastjson, which emits map keys that are numbers without
 * quotes (`{0:"a"}`). JSON.parse is tried first; on failure bare keys are quoted and it is tried again.
 */
import { readFileSync } from 'node:fs';

export function parseLenientJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return JSON.parse(quoteBareKeys(text)) as unknown;
  }
}

const BARE_KEY_CHAR = /[A-Za-z0-9_$.-]/;

/** Quotes object keys that are written without quotes; string contents are left alone. */
function quoteBareKeys(text: string): string {
  let out = '';
  let inString = false;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i] as string;
    if (inString) {
      out += char;
      if (char === '\\') {
        out += text[i + 1] ?? '';
        i++;
      } else if (char === '"') {
        inString = false;
      }
      continue;
    }
    if (char === '"') {
      inString = true;
      expectKey = false;
      out += char;
      continue;
    }
    if (char === '{' || char === ',') {
      expectKey = true;
      out += char;
      continue;
    }
    if (expectKey && BARE_KEY_CHAR.test(char)) {
      let end = i;
      while (end < text.length && BARE_KEY_CHAR.test(text[end] as string)) end++;
      let after = end;
      while (after < text.length && /\s/.test(text[after] as string)) after++;
      if (text[after] === ':') {
        out += `"${text.slice(i, end)}"`;
        i = end - 1;
        expectKey = false;
        continue;
      }
    }
    if (!/\s/.test(char)) expectKey = false;
    out += char;
  }
  return out;
}

/** Reads a JSON config file that we or RocketMQ wrote; undefined when it does not exist. */
export function readLenientJsonFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parseLenientJson(text);
}
