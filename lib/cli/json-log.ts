/**
 * The node process's structured log: one JSON object per line, in pino's shape
 * (`level` as pino's number, `time` in epoch milliseconds, `pid`, `hostname`,
 * `msg`, then the object's own fields), so `pino-pretty` and log shippers read it.
 * This is the CLI's logger; library code only ever receives it as an option.
 *
 * @packageDocumentation
 */
import * as os from 'node:os';
import type { Logger } from '../net/api';
import { LOG_LEVELS, type LogLevelName } from './cluster-args';

/** Turns an Error (and its TidemarkError fields) into plain JSON. */
function serializeError(err: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { type: err.name, message: err.message };
  for (const k of ['code', 'errno', 'syscall', 'path', 'offset', 'leaderId'] as const) {
    const v = (err as unknown as Record<string, unknown>)[k];
    if (v !== undefined) out[k] = v;
  }
  if (err.stack !== undefined) out.stack = err.stack;
  return out;
}

function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return serializeError(value);
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  return value;
}

/** A pino-compatible logger writing JSON lines through `write` (default: stdout). */
export function jsonLogger(options: { level?: LogLevelName; bindings?: Record<string, unknown>; write?: (line: string) => void } = {}): Logger {
  const min = LOG_LEVELS[options.level ?? 'info'];
  const base = { pid: process.pid, hostname: os.hostname(), ...(options.bindings ?? {}) };
  const write = options.write ?? ((line: string) => process.stdout.write(line));
  const emit = (level: number, obj: object, msg?: string): void => {
    if (level < min) return;
    let line: string;
    try {
      line = JSON.stringify({ level, time: Date.now(), ...base, ...obj, msg: msg ?? '' }, replacer);
    } catch {
      line = JSON.stringify({ level, time: Date.now(), ...base, msg: msg ?? '', logError: 'fields could not be serialised' });
    }
    write(line + '\n');
  };
  return {
    debug: (obj, msg) => emit(LOG_LEVELS.debug, obj, msg),
    info: (obj, msg) => emit(LOG_LEVELS.info, obj, msg),
    warn: (obj, msg) => emit(LOG_LEVELS.warn, obj, msg),
    error: (obj, msg) => emit(LOG_LEVELS.error, obj, msg),
  };
}
