/**
 * `mkdir -p` with a bounded number of system calls.
 *
 * Node's `mkdir(path, { recursive: true })` loops forever when the kernel answers
 * `mkdir` with ENOENT although the parent exists (procfs and sysfs do: `/proc/tm` spun at
 * 100 % CPU). This walks up to the nearest existing ancestor once (at most one `stat` per
 * path component), then creates each missing component top-down with a plain `mkdir`, so
 * any refusal is reported as the kernel gave it (ENOENT, EACCES, EROFS, ENOTDIR...).
 */
import { mkdir, stat } from 'node:fs/promises';
import * as path from 'node:path';

/**
 * Creates `abs` (absolute) and its missing parents. Resolves to the first directory it
 * created (as `mkdir(..., { recursive: true })` does), or undefined when `abs` already was
 * a directory. Rejects with the failing call's errno error; a non-directory at `abs` gives
 * EEXIST, a non-directory on the way ENOTDIR.
 */
export async function makeDirectories(abs: string): Promise<string | undefined> {
  const missing: string[] = [];
  for (let d = abs; ; ) {
    try {
      const st = await stat(d);
      // Something that is not a directory where the log directory should be: let mkdir say so (EEXIST).
      if (!st.isDirectory()) await mkdir(d);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      missing.push(d);
      const parent = path.dirname(d);
      if (parent === d) throw err;
      d = parent;
    }
  }
  missing.reverse();
  for (const d of missing) {
    try {
      await mkdir(d);
    } catch (err) {
      // Created meanwhile by someone else: fine if it is a directory now.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && (await stat(d)).isDirectory()) continue;
      throw err;
    }
  }
  return missing[0];
}
