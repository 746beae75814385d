/**
 * Child of node-crash.test.ts: a one-voter TidemarkNode (full driver path: persist, apply,
 * sessions, snapshots) in `dir`. First retries the commands the previous child had in
 * flight (same clientId and seq), then writes new ones from `writers` sessions until killed.
 *
 * stdout: `R` (leader, ready) · `O <clientId> <seq> <text>` (about to propose) ·
 * `A <clientId> <seq> <text> <index>` (acknowledged) · `E <message>`. Each line is handed to
 * the kernel before the next step (see emit), so a kill loses none of them.
 */
import { TidemarkNode } from '../../lib/cluster/node';
import { MemoryNetwork } from '../../lib/cluster/memory-transport';
import { ListMachine, emit } from './cluster-helpers';

interface Retry {
  clientId: string;
  seq: number;
  text: string;
}
const config = JSON.parse(process.argv[2] ?? '{}') as { dir: string; round: number; writers: number; retries: Retry[]; snapshotEntries: number };

async function main(): Promise<void> {
  const net = new MemoryNetwork();
  const node = await TidemarkNode.open({
    id: 'solo',
    dir: config.dir,
    clusterId: 'crash',
    voters: ['solo'],
    transport: net.transport('solo'),
    stateMachine: new ListMachine(),
    tickMs: 5,
    electionTimeoutTicks: 10,
    heartbeatTicks: 2,
    snapshotEntries: config.snapshotEntries,
    wal: { sync: 'fdatasync', segmentBytes: 64 * 1024 },
  });
  node.on('error', (err: Error) => process.stdout.write(`E node: ${err.message}\n`));
  while (node.role !== 'leader') await new Promise((r) => setTimeout(r, 5));
  process.stdout.write('R\n');
  const propose = async (clientId: string, seq: number, text: string): Promise<void> => {
    await emit(`O ${clientId} ${seq} ${text}\n`);
    for (;;) {
      const res = await node.request({ kind: 'propose', clientId, seq, payload: Buffer.from(text) });
      if (res.ok) {
        await emit(`A ${clientId} ${seq} ${text} ${res.index}\n`);
        return;
      }
      if (res.code !== 'TM_BUSY' && res.code !== 'TM_UNKNOWN_OUTCOME') throw new Error(`${res.code} ${res.message}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  await Promise.all(config.retries.map((r) => propose(r.clientId, r.seq, r.text)));
  await Promise.all(
    Array.from({ length: config.writers }, async (_, w) => {
      const clientId = `r${config.round}w${w}`;
      for (let seq = 1; ; seq++) await propose(clientId, seq, `${clientId}-${seq}`);
    }),
  );
}

main().catch((err: unknown) => {
  process.stdout.write(`E ${String((err as Error)?.stack ?? err).replace(/\n/g, ' | ')}\n`);
  process.exitCode = 1;
});
