/**
 * One-line text forms of entries and messages, for traces, scenario scripts and
 * driver logs. Pure.
 *
 * @packageDocumentation
 */
import { unreachable } from './assert';
import type { Entry, Message } from './types';

/** Printable ASCII as a quoted string, anything else as hex. */
export function describeData(data: Uint8Array): string {
  let ascii = true;
  for (const b of data) {
    if (b < 0x20 || b > 0x7e || b === 0x22) {
      ascii = false;
      break;
    }
  }
  if (ascii) return `"${String.fromCharCode(...data)}"`;
  let hex = '0x';
  for (const b of data) hex += b.toString(16).padStart(2, '0');
  return hex;
}

/** `index/generation "data"` or `index/generation noop`. */
export function describeEntry(e: Entry): string {
  return e.kind === 'noop' ? `${e.index}/${e.generation} noop` : `${e.index}/${e.generation} ${describeData(e.data)}`;
}

/** `from->to type g<generation> fields...` */
export function describeMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} g${m.generation}`;
  switch (m.type) {
    case 'pre-vote':
    case 'vote':
      return `${head} last=${m.lastIndex}/${m.lastGeneration}${m.type === 'vote' && m.transfer ? ' transfer' : ''}`;
    case 'pre-vote-response':
    case 'vote-response':
      return `${head} ${m.granted ? 'granted' : 'refused'}`;
    case 'append':
      return `${head} prev=${m.prevIndex}/${m.prevGeneration} commit=${m.commit} [${m.entries.map(describeEntry).join(', ')}]`;
    case 'append-response':
      return m.success
        ? `${head} ok index=${m.index}`
        : `${head} refused index=${m.index} hint=${m.hintIndex}/${m.hintGeneration}`;
    case 'heartbeat':
      return `${head} commit=${m.commit} round=${m.readRound}`;
    case 'heartbeat-response':
      return `${head} round=${m.readRound}`;
    case 'snapshot-chunk':
      return `${head} snap=${m.meta.index}/${m.meta.generation} bytes=${m.offset}..${m.offset + m.data.length}/${m.totalBytes}`;
    case 'snapshot-response':
      return `${head} snap=${m.snapshotIndex} next=${m.nextOffset}`;
    case 'timeout-now':
      return head;
    default:
      return unreachable(m, 'message');
  }
}
