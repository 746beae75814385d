/**
 * Scenario scripts (test/core/scenarios/*.txt) in the style of etcd raft's
 * datadriven interaction tests. Each block is `command args`, `----`, expected
 * output, blank line. `REWRITE=1 npx vitest run test/core/scenarios.test.ts`
 * regenerates the expected output (review the diff!).
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Interaction } from './interaction';

const dir = join(__dirname, 'scenarios');

interface Block {
  comment: string[];
  command: string;
  expected: string;
}

function parse(text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    const comment: string[] = [];
    while (i < lines.length && ((lines[i] as string).startsWith('#') || (lines[i] as string).trim() === '')) {
      comment.push(lines[i] as string);
      i++;
    }
    if (i >= lines.length) break;
    const command = lines[i] as string;
    i++;
    if (lines[i] !== '----') throw new Error(`expected ---- after "${command}" at line ${i + 1}`);
    i++;
    const exp: string[] = [];
    while (i < lines.length && (lines[i] as string) !== '') {
      exp.push(lines[i] as string);
      i++;
    }
    blocks.push({ comment, command, expected: exp.join('\n') });
  }
  return blocks;
}

function render(blocks: Block[], outputs: string[]): string {
  const parts: string[] = [];
  blocks.forEach((b, k) => {
    parts.push(...b.comment, b.command, '----', outputs[k] as string);
  });
  return parts.join('\n') + '\n';
}

describe('scenarios', () => {
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.txt')).sort()) {
    it(file, () => {
      const path = join(dir, file);
      const text = readFileSync(path, 'utf8');
      expect(text.startsWith('#'), `${file} must open with a # paragraph saying what it shows`).toBe(true);
      const blocks = parse(text);
      const env = new Interaction();
      const outputs: string[] = [];
      for (const b of blocks) {
        const [cmd, ...args] = b.command.trim().split(/\s+/);
        outputs.push(env.run(cmd as string, args));
      }
      if (process.env.REWRITE === '1') {
        writeFileSync(path, render(blocks, outputs));
        return;
      }
      blocks.forEach((b, k) => {
        expect(outputs[k], `${file}: output of "${b.command}"`).toBe(b.expected);
      });
    });
  }
});
