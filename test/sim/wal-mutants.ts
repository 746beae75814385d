/**
 * Planted bugs in the storage adapter (lib/cluster/storage.ts), for sim-wal.test.ts: each is one
 * search/replace in a copy of the module written to a temp directory (its imports pointed back
 * at lib/), so the simulator's native-Wal mode can run the core over a broken adapter and show
 * that its restarts really come from what the adapter recovers.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { RaftStorage } from '../../lib/cluster/storage';

export interface StorageMutant {
  readonly name: string;
  readonly description: string;
  readonly search: string;
  readonly replace: string;
}

export const STORAGE_MUTANTS: readonly StorageMutant[] = [
  {
    name: 'recovery-forgets-vote',
    description: 'the recovered hard state loses its vote (a decoding bug): a restarted node may vote twice in one generation',
    search: 'hardState(): HardState {\n    return this.hsFile.hardState;\n  }',
    replace: 'hardState(): HardState {\n    return { ...this.hsFile.hardState, votedFor: null };\n  }',
  },
  {
    name: 'recovery-drops-last-entry',
    description: 'recovery treats the last record as torn and truncates it: an acknowledged entry is lost',
    search: '      let log = await readLog(wal, offset, snapIndex, walDir);\n',
    replace: '      let log = await readLog(wal, offset, snapIndex, walDir);\n      if (log.entries.length > 0) {\n        log.entries.pop();\n        await wal.truncateAfter(wal.lastIndex - 1);\n      }\n',
  },
  {
    name: 'recovery-commit-to-last-index',
    description: 'the recovered high-water mark is the last stored index (a restarted node applies entries that may never commit)',
    search: 'hardState(): HardState {\n    return this.hsFile.hardState;\n  }',
    replace: 'hardState(): HardState {\n    return { ...this.hsFile.hardState, commit: Math.max(this.hsFile.hardState.commit, this.lastIndex()) };\n  }',
  },
];

const LIB = resolve(__dirname, '..', '..', 'lib');

/** Loads lib/cluster/storage.ts with `m` planted; `cleanup` removes the copy. */
export async function loadMutant(m: StorageMutant): Promise<{ RaftStorage: typeof RaftStorage; cleanup: () => void }> {
  let src = readFileSync(join(LIB, 'cluster', 'storage.ts'), 'utf8');
  if (!src.includes(m.search)) throw new Error(`mutant ${m.name}: the search text is not in lib/cluster/storage.ts`);
  src = src.replace(m.search, m.replace);
  src = src.replace(/from '\.\.\/([^']+)'/g, (_s, p: string) => `from '${join(LIB, p)}'`).replace(/from '\.\/([^']+)'/g, (_s, p: string) => `from '${join(LIB, 'cluster', p)}'`);
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-storage-mutant-'));
  const file = join(dir, 'storage.ts');
  writeFileSync(file, src);
  const mod = (await import(file)) as { RaftStorage: typeof RaftStorage };
  return { RaftStorage: mod.RaftStorage, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
