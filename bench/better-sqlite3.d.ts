// The slice of better-sqlite3's API the benchmark uses (the package ships no types and
// @types/better-sqlite3 is not a dependency).
declare module 'better-sqlite3' {
  namespace BetterSqlite3 {
    interface RunResult {
      changes: number;
      lastInsertRowid: number | bigint;
    }
    interface Statement {
      run(...params: unknown[]): RunResult;
    }
    interface Database {
      pragma(source: string, options?: { simple?: boolean }): unknown;
      prepare(source: string): Statement;
      exec(source: string): Database;
      transaction<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void;
      close(): Database;
    }
  }
  interface BetterSqlite3Constructor {
    new (filename: string, options?: { readonly?: boolean; fileMustExist?: boolean; timeout?: number }): BetterSqlite3.Database;
  }
  const BetterSqlite3: BetterSqlite3Constructor;
  export = BetterSqlite3;
}
