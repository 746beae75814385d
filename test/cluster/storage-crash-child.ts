/**
 * Child process of storage-crash.test.ts: opens RaftStorage in `dir`, builds the model of
 * what it recovered, then runs seeded operations one at a time until SIGKILLed.
 *
 * Protocol (stdout, one line each):
 *   R                 opened (recovery done)
 *   O <op json>       about to start this operation
 *   A <op id>         the operation resolved (durable)
 *   E <message>       something went wrong
 */
import { RaftStorage } from '../../lib/cluster/storage';
import { Rng } from '../helpers';
import { emit } from './cluster-helpers';
import { applyOp, modelOf, nextOp, persistWorkOf, snapshotOf } from './storage-model';

const config = JSON.parse(process.argv[2] ?? '{}') as { dir: string; seed: number; segmentBytes: number };

async function main(): Promise<void> {
  const storage = await RaftStorage.open(config.dir, { wal: { sync: 'fdatasync', segmentBytes: config.segmentBytes } });
  let model = modelOf(storage);
  let commit = storage.hardState().commit;
  await emit('R\n');
  const rng = new Rng(config.seed);
  for (let id = 1; ; id++) {
    const op = nextOp(rng, model, id, commit);
    await emit(`O ${JSON.stringify(op)}\n`);
    if (op.kind === 'compact') await storage.compact(snapshotOf(op.snapshot));
    else await storage.persist(persistWorkOf(op));
    await emit(`A ${id}\n`);
    model = applyOp(model, op);
    if (op.kind === 'persist' && op.hardState !== null) commit = Math.max(commit, op.hardState.commit);
  }
}

main().catch((err: unknown) => {
  const e = err as { code?: string; message?: string; stack?: string };
  process.stdout.write(`E ${(e.code ?? 'no code') + ': ' + (e.stack ?? e.message ?? String(err))}`.replace(/\n/g, ' | ') + '\n');
  process.exitCode = 1;
});
