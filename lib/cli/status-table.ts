/**
 * `tidemark status`: what each node says about itself, as a table or JSON.
 * The status document is the node's JSON answer to a `status` request; this file
 * reads the fields it knows from it and leaves the rest alone, so a node that
 * adds fields never breaks an older CLI.
 *
 * @packageDocumentation
 */

/** One follower as a leader reports it. */
export interface PeerView {
  readonly id: string;
  readonly match: number;
  /** Leader's last index minus the follower's match. */
  readonly lag: number;
  readonly inflightBytes: number | undefined;
}

/** The fields of a node's status document that the CLI shows. */
export interface NodeView {
  readonly id: string;
  readonly role: string;
  readonly leaderId: string | null;
  readonly generation: number;
  /** High-water mark. */
  readonly commit: number;
  readonly applied: number | undefined;
  readonly firstIndex: number | undefined;
  readonly lastIndex: number | undefined;
  readonly peers: readonly PeerView[];
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Reads a status document (parsed JSON) into a {@link NodeView}; throws when it is not one. */
export function toNodeView(doc: unknown): NodeView {
  if (typeof doc !== 'object' || doc === null) throw new Error('status document is not an object');
  const d = doc as Record<string, unknown>;
  const id = typeof d.id === 'string' ? d.id : undefined;
  const role = typeof d.role === 'string' ? d.role : undefined;
  const generation = num(d.generation);
  const commit = num(d.commit) ?? num(d.highWaterMark);
  if (id === undefined || role === undefined || generation === undefined || commit === undefined) {
    throw new Error('status document lacks id, role, generation or commit');
  }
  const lastIndex = num(d.lastIndex);
  const peersRaw: unknown[] = Array.isArray(d.peers)
    ? d.peers
    : typeof d.peers === 'object' && d.peers !== null
      ? Object.entries(d.peers).map(([pid, p]) => ({ id: pid, ...(p as object) }))
      : [];
  const peers: PeerView[] = [];
  for (const p of peersRaw) {
    if (typeof p !== 'object' || p === null) continue;
    const q = p as Record<string, unknown>;
    const match = num(q.match);
    if (typeof q.id !== 'string' || match === undefined) continue;
    peers.push({ id: q.id, match, lag: num(q.lag) ?? Math.max(0, (lastIndex ?? commit) - match), inflightBytes: num(q.inflightBytes) });
  }
  return {
    id,
    role,
    leaderId: typeof d.leaderId === 'string' ? d.leaderId : typeof d.leader === 'string' ? d.leader : null,
    generation,
    commit,
    applied: num(d.applied),
    firstIndex: num(d.firstIndex),
    lastIndex,
    peers,
  };
}

/** One row of the table: a node that answered, or the address that did not. */
export type StatusRow = { readonly address: string; readonly view: NodeView } | { readonly address: string; readonly error: string };

function pad(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd()).join('\n');
}

/** The human table: node, address, role, generation, high-water mark, applied, log range, lag per peer. */
export function formatStatusTable(rows: readonly StatusRow[]): string {
  const table: string[][] = [['NODE', 'ADDRESS', 'ROLE', 'GEN', 'HWM', 'APPLIED', 'LOG', 'LAG']];
  for (const r of rows) {
    if ('error' in r) {
      table.push(['?', r.address, 'unreachable', '-', '-', '-', '-', r.error]);
      continue;
    }
    const v = r.view;
    const log = v.firstIndex !== undefined && v.lastIndex !== undefined ? `${v.firstIndex}..${v.lastIndex}` : v.lastIndex !== undefined ? `..${v.lastIndex}` : '-';
    const lag = v.role === 'leader' ? (v.peers.length === 0 ? '-' : v.peers.map((p) => `${p.id}:${p.lag}`).join(' ')) : v.leaderId === null ? 'no leader' : `leader ${v.leaderId}`;
    table.push([v.id, r.address, v.role, String(v.generation), String(v.commit), v.applied === undefined ? '-' : String(v.applied), log, lag]);
  }
  return pad(table);
}
