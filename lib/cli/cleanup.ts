/**
 * Scratch files of a CLI command, removed when the command is interrupted (Ctrl-C,
 * SIGINT or SIGTERM) as well as when it ends: the demo and `bench fsync` write tens of
 * megabytes into the temp directory. CLI only: library code installs no signal handlers.
 */
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';

/** What an interrupted command must remove (paths) and stop (child processes). */
export class Scratch {
  readonly #paths = new Set<string>();
  readonly #children = new Set<ChildProcess>();

  /** A file or directory to remove on interruption (removed recursively). */
  add(file: string): void {
    this.#paths.add(file);
  }

  /** The command removed it (or wants it kept) itself. */
  forget(file: string): void {
    this.#paths.delete(file);
  }

  /** A child process to SIGKILL on interruption, forgotten once it exits. */
  child(child: ChildProcess): void {
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
  }

  /** Kills the children and removes every path; returns the paths it removed. */
  removeAll(): string[] {
    for (const child of this.#children) child.kill('SIGKILL');
    const removed: string[] = [];
    for (const file of this.#paths) {
      try {
        fs.rmSync(file, { recursive: true, force: true });
        removed.push(file);
      } catch {
        // Best effort: the process is exiting.
      }
    }
    this.#paths.clear();
    return removed;
  }
}

const signalNumbers = { SIGINT: 2, SIGTERM: 15 } as const;

/**
 * Until the returned function is called, SIGINT and SIGTERM remove `scratch` and exit
 * with 128 + the signal number (130, 143), after one line on stderr. The handlers run when
 * the event loop turns, so long synchronous work must yield now and then.
 */
export function cleanUpOnSignal(scratch: Scratch): () => void {
  const handlers = Object.entries(signalNumbers).map(([signal, number]) => {
    const handler = (): void => {
      const removed = scratch.removeAll();
      process.stderr.write(`tidemark: interrupted (${signal})${removed.length > 0 ? `; removed ${removed.join(', ')}` : ''}\n`);
      process.exit(128 + number);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
}
