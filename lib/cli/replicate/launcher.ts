/**
 * Process groups for the replication benchmark's foreign contestants (etcd, ZooKeeper):
 * spawn members with a log file each, SIGKILL one and wait for it to be gone, restart it,
 * poll for health with a deadline, and clean up always: every process killed and the
 * temporary directory removed, on normal exit, on error and on Ctrl-C (SIGINT/SIGTERM).
 *
 * Imports only node:* and root modules, so the root test suite can exercise it with a fake
 * member process (see test/bench/replicate.test.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export { freePorts, sleep } from '../local-cluster';
import { sleep } from '../local-cluster';

/** How to start one member. */
export interface MemberCommand {
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

interface Running {
  readonly cmd: MemberCommand;
  child: ChildProcess | null;
  exited: Promise<void>;
}

const liveGroups = new Set<ProcessGroup>();
const extraCleanups = new Set<() => void>();

/** Adds a synchronous cleanup run on SIGINT/SIGTERM (see {@link installSignalHandlers}) and at exit; returns its remover. */
export function registerCleanup(fn: () => void): () => void {
  extraCleanups.add(fn);
  installExitHook();
  return () => extraCleanups.delete(fn);
}

function runCleanups(): void {
  for (const g of liveGroups) g.cleanupSync();
  for (const fn of extraCleanups) {
    try {
      fn();
    } catch {
      // best effort
    }
  }
}
let handlersInstalled = false;

/**
 * On SIGINT/SIGTERM, kill every live group's processes, remove their directories and exit
 * (130/143). Called by the benchmark's main; library users (tests) keep their own handlers.
 */
export function installSignalHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const onSignal = (signal: NodeJS.Signals) => {
    runCleanups();
    process.stderr.write(`\nbench: ${signal}: killed every benchmark process and removed their directories\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
}

let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', runCleanups);
}

/**
 * Members sharing one temporary directory (`baseDir`, created by the caller, removed by
 * {@link cleanup}). Every member's stdout and stderr go to `<baseDir>/<id>.log`.
 */
export class ProcessGroup {
  private readonly members = new Map<string, Running>();
  private cleaned = false;

  constructor(readonly baseDir: string) {
    liveGroups.add(this);
    installExitHook();
  }

  /** Starts (or restarts, with the same command) member `id`. */
  spawn(id: string, cmd?: MemberCommand): void {
    const prev = this.members.get(id);
    const command = cmd ?? prev?.cmd;
    if (command === undefined) throw new Error(`no command for member ${id}`);
    if (prev?.child != null) throw new Error(`member ${id} is already running`);
    const logFd = fs.openSync(this.logFile(id), 'a');
    const child = spawn(command.command, [...command.args], { stdio: ['ignore', logFd, logFd], env: command.env ?? process.env, cwd: command.cwd });
    fs.closeSync(logFd);
    const entry: Running = { cmd: command, child, exited: Promise.resolve() };
    entry.exited = new Promise<void>((resolve) => {
      child.on('error', () => undefined);
      child.on('close', () => {
        if (entry.child === child) entry.child = null;
        resolve();
      });
    });
    this.members.set(id, entry);
  }

  /** The member's log file. */
  logFile(id: string): string {
    return path.join(this.baseDir, `${id}.log`);
  }

  ids(): string[] {
    return [...this.members.keys()];
  }

  pid(id: string): number | undefined {
    return this.members.get(id)?.child?.pid;
  }

  running(id: string): boolean {
    return this.members.get(id)?.child != null;
  }

  /** SIGKILLs the member and resolves once its process is gone. */
  async kill(id: string): Promise<void> {
    const m = this.members.get(id);
    if (m?.child == null) return;
    m.child.kill('SIGKILL');
    await m.exited;
  }

  /** Kills every member (SIGKILL), waits for them, removes `baseDir`. Idempotent. */
  async cleanup(): Promise<void> {
    await Promise.all(this.ids().map((id) => this.kill(id)));
    this.cleanupSync();
  }

  /** Synchronous part of {@link cleanup} (for signal and exit handlers). */
  cleanupSync(): void {
    for (const m of this.members.values()) {
      if (m.child !== null && m.child.exitCode === null && m.child.signalCode === null) {
        try {
          m.child.kill('SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    if (!this.cleaned) {
      this.cleaned = true;
      fs.rmSync(this.baseDir, { recursive: true, force: true });
      liveGroups.delete(this);
    }
  }
}

/**
 * Polls `check` every `intervalMs` until it resolves true, or throws after `timeoutMs`
 * (with the last error `check` threw, if any). A member that exits makes `alive` false and
 * fails the wait at once.
 */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, intervalMs = 100, alive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    if (!alive()) throw new Error(`${what}: the process exited`);
    try {
      if (await check()) return;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) throw new Error(`${what}: not ready within ${timeoutMs} ms${last === '' ? '' : ` (${last})`}`);
    await sleep(intervalMs);
  }
}

/** Total size in bytes of the regular files under `dir` (0 when it does not exist). */
export function dirBytes(dir: string): number {
  let total = 0;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += dirBytes(p);
    else if (e.isFile()) {
      try {
        total += fs.statSync(p).size;
      } catch {
        // removed meanwhile
      }
    }
  }
  return total;
}

/** A cluster of members in one {@link ProcessGroup}, each with a client port and a data directory `<baseDir>/<id>`. */
export abstract class Ensemble {
  protected constructor(
    readonly group: ProcessGroup,
    protected readonly clientPorts: Map<string, number>,
  ) {}

  ids(): string[] {
    return [...this.clientPorts.keys()];
  }

  pid(id: string): number | undefined {
    return this.group.pid(id);
  }

  dataDir(id: string): string {
    return path.join(this.group.baseDir, id);
  }

  dataBytes(id: string): number {
    return dirBytes(this.dataDir(id));
  }

  /** Running members. */
  protected running(): string[] {
    return this.ids().filter((id) => this.group.running(id));
  }

  protected majority(): number {
    return Math.floor(this.ids().length / 2) + 1;
  }

  /** Polls `pick` (the leader among running members, or undefined) until it names one. */
  protected async pollLeader(what: string, timeoutMs: number, intervalMs: number, pick: (running: string[]) => Promise<string | undefined>): Promise<string> {
    let found: string | undefined;
    await waitFor(what, async () => (found = await pick(this.running())) !== undefined, timeoutMs, intervalMs);
    return found as string;
  }

  async kill(id: string): Promise<void> {
    await this.group.kill(id);
  }

  async cleanup(): Promise<void> {
    await this.group.cleanup();
  }
}
