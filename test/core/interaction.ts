/**
 * A scriptable cluster for scenario tests, in the spirit of etcd raft's
 * interaction tests: every command prints what the replicas do, so a script's
 * expected output reads like the protocol.
 */
import { MemoryLog } from '../../lib/log/memory';
import {
  Replica,
  SeededRandom,
  describeEntry,
  describeMessage,
  type Message,
  type Ready,
  type ReplicaOptions,
} from '../../lib/core';

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Node {
  id: string;
  log: MemoryLog;
  replica: Replica | null; // null while crashed
  paused: boolean;
  applied: string[]; // state machine: applied payloads, index-aligned from `appliedBase + 1`
  options: Partial<ReplicaOptions>;
  seed: number;
}

export class Interaction {
  private nodes = new Map<string, Node>();
  private inbox = new Map<string, Message[]>();
  /** Blocked directed links "a>b". */
  private blocked = new Set<string>();
  private voters: string[] = [];

  run(command: string, args: string[]): string {
    const out: string[] = [];
    const kv = new Map<string, string>();
    const pos: string[] = [];
    for (const a of args) {
      const eq = a.indexOf('=');
      if (eq > 0) kv.set(a.slice(0, eq), a.slice(eq + 1));
      else pos.push(a);
    }
    switch (command) {
      case 'add-nodes':
        this.addNodes(Number(pos[0]), kv, out);
        break;
      case 'campaign':
        this.node(pos[0]).replica!.campaign();
        break;
      case 'propose': {
        const r = this.node(pos[0]).replica!;
        try {
          const at = r.propose(enc.encode(pos[1] ?? ''));
          out.push(`proposed at ${at.index}/${at.generation}`);
        } catch (e) {
          out.push(`refused: ${(e as Error).message}`);
        }
        break;
      }
      case 'read-index': {
        try {
          this.node(pos[0]).replica!.readIndex(pos[1] ?? 'r');
        } catch (e) {
          out.push(`refused: ${(e as Error).message}`);
        }
        break;
      }
      case 'read-local':
        this.node(pos[0]).replica!.readLocal(pos[1] ?? 'r');
        break;
      case 'transfer-leadership':
        this.node(pos[0]).replica!.transferLeadership(pos[1] as string);
        break;
      case 'tick': {
        const n = Number(pos[1] ?? 1);
        const r = this.node(pos[0]).replica!;
        for (let i = 0; i < n; i++) r.tick();
        break;
      }
      case 'process-ready':
        for (const id of pos) this.processReady(this.node(id), out);
        break;
      case 'deliver-msgs': {
        const drop = parseList(kv.get('drop'));
        for (const id of drop) {
          for (const m of this.inbox.get(id) ?? []) out.push(`dropped: ${describeMessage(m)}`);
          this.inbox.set(id, []);
        }
        const from = kv.has('from') ? new Set(parseList(kv.get('from'))) : null;
        for (const id of pos) this.deliver(this.node(id), out, from);
        break;
      }
      case 'stabilize':
        this.stabilize(pos.length > 0 ? pos : [...this.nodes.keys()], out);
        break;
      case 'partition': {
        // partition 1 | 2 3 : cut every link across the bar, both ways
        const bar = pos.indexOf('|');
        const left = pos.slice(0, bar);
        const right = pos.slice(bar + 1);
        for (const a of left) for (const b of right) {
          this.blocked.add(`${a}>${b}`);
          this.blocked.add(`${b}>${a}`);
        }
        break;
      }
      case 'cut': // one-way: cut 1 2 drops messages from 1 to 2
        this.blocked.add(`${pos[0]}>${pos[1]}`);
        break;
      case 'heal':
        this.blocked.clear();
        break;
      case 'pause':
        this.node(pos[0]).paused = true;
        break;
      case 'resume':
        this.node(pos[0]).paused = false;
        break;
      case 'crash': {
        const n = this.node(pos[0]);
        n.replica = null;
        n.applied = [];
        this.inbox.set(n.id, []);
        break;
      }
      case 'restart': {
        const n = this.node(pos[0]);
        this.inbox.set(n.id, []); // what was sent to it while down is gone
        this.startReplica(n);
        out.push(this.statusLine(n));
        break;
      }
      case 'compact': {
        const n = this.node(pos[0]);
        const index = Number(pos[1]);
        const r = n.replica!;
        if (index > r.applied) throw new Error(`compact ${index} above applied ${r.applied}`);
        n.log.compact(index, this.snapshotData(n, index));
        out.push(`compacted ${n.id} to ${index}: first index ${n.log.firstIndex()}`);
        break;
      }
      case 'status':
        for (const id of pos.length > 0 ? pos : [...this.nodes.keys()]) out.push(this.statusLine(this.node(id)));
        break;
      case 'log':
        for (const id of pos) {
          const r = this.node(id).replica!;
          const es = r.lastIndex >= r.status().firstIndex ? r.entries(r.status().firstIndex, r.lastIndex + 1) : [];
          out.push(`${id}: first=${r.status().firstIndex} [${es.map(describeEntry).join(', ')}]`);
        }
        break;
      case 'applied':
        for (const id of pos) out.push(`${id}: ${this.node(id).applied.join(' ')}`);
        break;
      default:
        throw new Error(`unknown command ${command}`);
    }
    return out.length === 0 ? 'ok' : out.join('\n');
  }

  private node(id: string | undefined): Node {
    const n = this.nodes.get(id ?? '');
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  private addNodes(count: number, kv: Map<string, string>, out: string[]): void {
    const first = this.nodes.size + 1;
    for (let i = 0; i < count; i++) this.voters.push(String(first + i));
    const options: Partial<ReplicaOptions> = {
      electionTimeoutTicks: Number(kv.get('election') ?? 10),
      heartbeatTicks: Number(kv.get('heartbeat') ?? 1),
      preVote: (kv.get('prevote') ?? 'true') === 'true',
      checkQuorum: (kv.get('checkquorum') ?? 'true') === 'true',
      snapshotChunkBytes: Number(kv.get('chunk') ?? 1024),
      maxInflightAppends: Number(kv.get('inflight') ?? 64),
      maxUncommittedBytes: Number(kv.get('uncommitted') ?? 1 << 20),
      maxAppendBytes: Number(kv.get('append-bytes') ?? 1 << 20),
    };
    for (let i = 0; i < count; i++) {
      const id = String(first + i);
      const n: Node = { id, log: new MemoryLog(), replica: null, paused: false, applied: [], options, seed: first + i };
      this.nodes.set(id, n);
      this.inbox.set(id, []);
      this.startReplica(n);
      out.push(this.statusLine(n));
    }
  }

  private startReplica(n: Node): void {
    const snap = n.log.snapshot();
    n.applied = snap === null ? [] : (JSON.parse(dec.decode(snap.data)) as string[]);
    n.replica = new Replica({
      ...n.options,
      id: n.id,
      voters: this.voters,
      clusterId: 'scenario',
      log: n.log,
      random: new SeededRandom(n.seed),
    });
  }

  private snapshotData(n: Node, index: number): Uint8Array {
    return enc.encode(JSON.stringify(n.applied.slice(0, index)));
  }

  private statusLine(n: Node): string {
    if (n.replica === null) return `${n.id}: crashed`;
    const s = n.replica.status();
    return `${n.id}: ${s.role} g${s.generation} leader=${s.leaderId ?? '-'} vote=${s.votedFor ?? '-'} commit=${s.commit} last=${s.lastIndex} applied=${s.applied}${n.paused ? ' paused' : ''}`;
  }

  private processReady(n: Node, out: string[]): boolean {
    const r = n.replica;
    if (r === null) return false;
    const rd = r.ready();
    if (rd === null) return false;
    out.push(`> ${n.id} handling Ready`);
    this.handle(n, r, rd, out);
    return true;
  }

  private handle(n: Node, r: Replica, rd: Ready, out: string[]): void {
    const p = rd.persist;
    for (const m of rd.messages) this.post(m, out, '  send');
    if (p.snapshot !== null) {
      out.push(`  persist snapshot ${p.snapshot.meta.index}/${p.snapshot.meta.generation}`);
      n.log.installSnapshot(p.snapshot);
      n.applied = JSON.parse(dec.decode(p.snapshot.data)) as string[];
    }
    if (p.entries.length > 0) {
      out.push(`  persist entries [${p.entries.map(describeEntry).join(', ')}]`);
      n.log.append(p.entries);
    }
    if (p.hardState !== null) {
      out.push(`  persist hard-state g${p.hardState.generation} vote=${p.hardState.votedFor ?? '-'} commit=${p.hardState.commit}`);
      n.log.setHardState(p.hardState);
    }
    for (const m of rd.messagesAfterPersist) this.post(m, out, '  send after persist');
    for (const e of rd.committedEntries) {
      n.applied[e.index - 1] = e.kind === 'noop' ? '.' : dec.decode(e.data);
    }
    if (rd.committedEntries.length > 0) out.push(`  apply [${rd.committedEntries.map(describeEntry).join(', ')}]`);
    for (const rs of rd.readStates) out.push(`  read ${rs.ctx} at ${rs.index === null ? 'FAILED' : rs.index}${rs.linearizable ? '' : ' (local, may be stale)'}`);
    r.advance(rd);
  }

  private post(m: Message, out: string[], label: string): void {
    if (this.blocked.has(`${m.from}>${m.to}`)) {
      out.push(`${label} ${describeMessage(m)} (lost: partition)`);
      return;
    }
    out.push(`${label} ${describeMessage(m)}`);
    this.inbox.get(m.to)?.push(m);
  }

  private deliver(n: Node, out: string[], from: Set<string> | null = null): boolean {
    if (n.paused || n.replica === null) return false;
    const all = this.inbox.get(n.id) ?? [];
    const msgs = from === null ? all : all.filter((m) => from.has(m.from));
    if (msgs.length === 0) return false;
    this.inbox.set(n.id, from === null ? [] : all.filter((m) => !from.has(m.from)));
    for (const m of msgs) {
      if (this.blocked.has(`${m.from}>${m.to}`)) {
        out.push(`  dropped (partition) ${describeMessage(m)}`);
        continue;
      }
      out.push(`  ${describeMessage(m)}`);
      const res = n.replica.step(m);
      if (res !== 'handled') out.push(`    ${res}`);
    }
    return true;
  }

  private stabilize(ids: string[], out: string[]): void {
    for (let round = 0; round < 100; round++) {
      let any = false;
      for (const id of ids) {
        const n = this.node(id);
        if (n.paused) continue;
        if (this.processReady(n, out)) any = true;
      }
      for (const id of ids) {
        const n = this.node(id);
        if (n.paused || n.replica === null || (this.inbox.get(id) ?? []).length === 0) continue;
        out.push(`> ${id} receiving messages`);
        if (this.deliver(n, out)) any = true;
      }
      if (!any) return;
    }
    throw new Error('stabilize did not settle in 100 rounds');
  }
}

function parseList(v: string | undefined): string[] {
  if (v === undefined) return [];
  return v.replace(/[()]/g, '').split(',').filter((x) => x.length > 0);
}
