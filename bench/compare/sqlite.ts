/**
 * better-sqlite3 12 in WAL journal mode with synchronous=FULL: SQLite syncs the WAL file on
 * every transaction commit. better-sqlite3 is synchronous, so the insert (and its sync)
 * runs on the JS thread.
 *
 * - `sqlite 1/txn`: each append is one INSERT in its own (autocommit) transaction; the
 *   promise resolves after `run()` returned, i.e. after the commit's sync.
 * - `sqlite batched/turn`: inserts issued in one event-loop turn are collected and written
 *   in one transaction from a setImmediate; all of them resolve after its commit.
 */
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { BenchStore, Contestant } from '../harness';

function openDb(dir: string): Database.Database {
  const db = new Database(path.join(dir, 'log.sqlite'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  const journal = db.pragma('journal_mode', { simple: true });
  const synchronous = db.pragma('synchronous', { simple: true });
  // Refuse to benchmark a configuration that does not sync each commit (FULL = 2).
  if (journal !== 'wal' || synchronous !== 2) throw new Error(`sqlite not in WAL/FULL: journal_mode=${String(journal)} synchronous=${String(synchronous)}`);
  db.exec('CREATE TABLE log (id INTEGER PRIMARY KEY, data BLOB NOT NULL)');
  return db;
}

export const sqliteOnePerTxn: Contestant = {
  name: 'sqlite 1/txn',
  durability: 'better-sqlite3, journal_mode=WAL, synchronous=FULL (checked): one INSERT per autocommit transaction, WAL synced at each commit',
  async open(dir): Promise<BenchStore> {
    const db = openDb(dir);
    const insert = db.prepare('INSERT INTO log (data) VALUES (?)');
    return {
      append(data) {
        insert.run(data); // returns after COMMIT, which synced the WAL
        return Promise.resolve();
      },
      syncCount: () => undefined,
      async close() {
        db.close();
      },
    };
  },
};

export const sqliteBatched: Contestant = {
  name: 'sqlite batched/turn',
  durability: 'better-sqlite3, WAL, synchronous=FULL: inserts issued in one event-loop turn go into one transaction (setImmediate), all resolve after its synced commit',
  async open(dir): Promise<BenchStore> {
    const db = openDb(dir);
    const insert = db.prepare('INSERT INTO log (data) VALUES (?)');
    let pending: { data: Buffer; resolve: () => void; reject: (err: unknown) => void }[] = [];
    const insertAll = db.transaction((batch: { data: Buffer }[]) => {
      for (const p of batch) insert.run(p.data);
    });
    const flush = (): void => {
      const batch = pending;
      pending = [];
      try {
        insertAll(batch);
        for (const p of batch) p.resolve();
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    };
    return {
      append(data) {
        return new Promise<void>((resolve, reject) => {
          if (pending.length === 0) setImmediate(flush);
          pending.push({ data, resolve, reject });
        });
      },
      syncCount: () => undefined,
      async close() {
        while (pending.length > 0) await new Promise((r) => setImmediate(r));
        db.close();
      },
    };
  },
};
