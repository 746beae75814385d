/**
 * Which filesystem and block device a directory lives on (Linux: /proc/self/mountinfo
 * and /sys/dev/block). Used by the CLI and the benchmarks to say where they measured.
 * Best effort: fields it cannot find are `undefined`, it never throws.
 */
import * as fs from 'node:fs';

/** What we could learn about the filesystem under a directory. */
export interface FsInfo {
  /** The directory asked about. */
  dir: string;
  /** `major:minor` of the filesystem's device (from `stat`). */
  deviceNumber: string;
  /** Where the filesystem is mounted. */
  mountPoint?: string;
  /** `ext4`, `xfs`, `tmpfs`, `overlay`, ... */
  fsType?: string;
  /** The mount source, e.g. `/dev/vda`. */
  source?: string;
  /** Mount options (per-mount and per-superblock). */
  options?: string;
  /** Block device name under /sys/block, e.g. `vda`. */
  blockDevice?: string;
  /** `write back` (volatile cache: a flush is needed for durability) or `write through`. */
  writeCache?: string;
  /** Whether the kernel thinks the device is rotational. */
  rotational?: boolean;
  /** Logical block size of the device in bytes. */
  logicalBlockBytes?: number;
  /** Physical block size of the device in bytes. */
  physicalBlockBytes?: number;
}

function readTrimmed(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Splits a Linux `dev_t` (as returned by `fs.stat().dev`) into major and minor numbers. */
export function splitDeviceNumber(dev: number): { major: number; minor: number } {
  // glibc's encoding: major = bits 8..19 and 32..43, minor = bits 0..7 and 20..31.
  const big = BigInt(dev);
  const major = Number(((big >> 8n) & 0xfffn) | ((big >> 32n) & ~0xfffn));
  const minor = Number((big & 0xffn) | ((big >> 12n) & ~0xffn));
  return { major, minor };
}

/** Describes the filesystem and device `dir` is on. */
export function describeFilesystem(dir: string): FsInfo {
  const { major, minor } = splitDeviceNumber(fs.statSync(dir).dev);
  const deviceNumber = `${major}:${minor}`;
  const info: FsInfo = { dir, deviceNumber };
  const mountinfo = readTrimmed('/proc/self/mountinfo');
  if (mountinfo !== undefined) {
    // Fields: id parent major:minor root mountpoint options [optional...] - fstype source superoptions
    let best: { mountPoint: string; line: string[] } | undefined;
    for (const line of mountinfo.split('\n')) {
      const fields = line.split(' ');
      if (fields[2] !== deviceNumber) continue;
      const mountPoint = (fields[4] ?? '').replace(/\\040/g, ' ');
      // Prefer the longest mount point that is a prefix of dir (bind mounts share a device).
      const isPrefix = dir === mountPoint || dir.startsWith(mountPoint.endsWith('/') ? mountPoint : `${mountPoint}/`);
      if (!isPrefix && best !== undefined) continue;
      if (best === undefined || (isPrefix && mountPoint.length > best.mountPoint.length)) best = { mountPoint, line: fields };
    }
    if (best !== undefined) {
      const dash = best.line.indexOf('-');
      info.mountPoint = best.mountPoint;
      if (dash >= 0) {
        const fsType = best.line[dash + 1];
        const source = best.line[dash + 2];
        if (fsType !== undefined) info.fsType = fsType;
        if (source !== undefined) info.source = source;
        info.options = [best.line[5], best.line[dash + 3]].filter((x) => x !== undefined).join(',');
      }
    }
  }
  // /sys/dev/block/M:m -> ../../devices/.../block/vda (or .../vda/vda1 for a partition).
  try {
    const target = fs.realpathSync(`/sys/dev/block/${deviceNumber}`);
    const parts = target.split('/');
    let name = parts[parts.length - 1];
    let queueDir = `${target}/queue`;
    if (!fs.existsSync(queueDir) && parts.length >= 2) {
      // A partition: the queue lives on the parent disk.
      name = parts[parts.length - 2];
      queueDir = `${parts.slice(0, -1).join('/')}/queue`;
    }
    if (name !== undefined) info.blockDevice = name;
    const writeCache = readTrimmed(`${queueDir}/write_cache`);
    if (writeCache !== undefined) info.writeCache = writeCache;
    const rotational = readTrimmed(`${queueDir}/rotational`);
    if (rotational !== undefined) info.rotational = rotational === '1';
    const lbs = readTrimmed(`${queueDir}/logical_block_size`);
    if (lbs !== undefined && /^\d+$/.test(lbs)) info.logicalBlockBytes = Number(lbs);
    const pbs = readTrimmed(`${queueDir}/physical_block_size`);
    if (pbs !== undefined && /^\d+$/.test(pbs)) info.physicalBlockBytes = Number(pbs);
  } catch {
    // Not a block device (tmpfs, overlay on a virtual device, not Linux): leave the fields out.
  }
  return info;
}

/** One line: `/tmp: ext4 on /dev/vda (254:0, mounted at /), device vda, write cache: write back`. */
export function formatFilesystem(info: FsInfo): string {
  const parts = [`${info.dir}: ${info.fsType ?? 'unknown fs'} on ${info.source ?? 'unknown source'} (dev ${info.deviceNumber}`];
  if (info.mountPoint !== undefined) parts[0] += `, mounted at ${info.mountPoint}`;
  parts[0] += ')';
  if (info.blockDevice !== undefined) {
    let dev = `device ${info.blockDevice}`;
    if (info.writeCache !== undefined) dev += `, write cache: ${info.writeCache}`;
    if (info.rotational !== undefined) dev += info.rotational ? ', rotational' : ', non-rotational';
    if (info.logicalBlockBytes !== undefined) dev += `, logical block ${info.logicalBlockBytes} B`;
    if (info.physicalBlockBytes !== undefined) dev += `, physical block ${info.physicalBlockBytes} B`;
    parts.push(dev);
  }
  return parts.join('; ');
}

/** Cumulative I/O counters of a whole block device (/sys/block/NAME/stat). */
export interface DeviceCounters {
  /** Write requests completed. */
  writes: number;
  /** Flush requests completed (field 16; Linux 5.5+), undefined on older kernels. */
  flushes?: number;
}

/** Reads /sys/block/`blockDevice`/stat; undefined when there is no such device (tmpfs, not Linux). */
export function readDeviceCounters(blockDevice: string | undefined): DeviceCounters | undefined {
  if (blockDevice === undefined || !/^[\w.-]+$/.test(blockDevice)) return undefined;
  const line = readTrimmed(`/sys/block/${blockDevice}/stat`);
  if (line === undefined) return undefined;
  const fields = line.split(/\s+/).map(Number);
  const writes = fields[4];
  if (writes === undefined || !Number.isFinite(writes)) return undefined;
  const flushes = fields[15];
  return flushes !== undefined && Number.isFinite(flushes) ? { writes, flushes } : { writes };
}
