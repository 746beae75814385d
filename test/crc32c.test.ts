import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32c } from '../lib/index';

interface Vector { name: string; hex: string; crc32c: number }
const vectors = (JSON.parse(readFileSync(join(__dirname, 'fixtures', 'crc32c.json'), 'utf8')) as { vectors: Vector[] }).vectors;

describe('crc32c', () => {
  it.each(vectors.map((v) => [v.name, v] as const))('one-shot: %s', (_name, v) => {
    expect(crc32c(Buffer.from(v.hex, 'hex'))).toBe(v.crc32c);
  });
});
