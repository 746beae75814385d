/**
 * A three-server ZooKeeper ensemble on 127.0.0.1 for the replication benchmark (Debian's
 * `zookeeper` package, run as `java -cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar
 * QuorumPeerMain zoo.cfg` with our own zoo.cfg, myid and data directory per server in a
 * temporary directory). `forceSync=yes` (the default, stated explicitly): the transaction
 * log is fsynced before a write is acknowledged. Status and leader through the `srvr`
 * four-letter command on a raw TCP socket, so this file needs no ZooKeeper client library.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Ensemble, freePorts, ProcessGroup, waitFor } from './launcher';

export const ZK_JAR = '/usr/share/java/zookeeper.jar';
export const ZK_CONF = '/etc/zookeeper/conf';

/** Options of {@link ZkEnsemble.start}. */
export interface ZkOptions {
  readonly baseDir: string;
  readonly ids?: readonly string[];
  /** ZooKeeper's tick: the leader pings followers every tickTime/2. */
  readonly tickTimeMs: number;
  /** Ticks a follower may be out of touch with the leader (and vice versa) before it gives up. */
  readonly syncLimit: number;
  /** Ticks a follower may take to connect and sync to the leader. */
  readonly initLimit: number;
  readonly java?: string;
  readonly heapMb?: number;
  readonly healthTimeoutMs?: number;
}

/** Why ZooKeeper cannot run here, or undefined when it can. */
export function zkMissing(java = 'java'): string | undefined {
  if (!fs.existsSync(ZK_JAR)) return `${ZK_JAR} not found (apt-get install -y zookeeper default-jre-headless)`;
  const found = (process.env.PATH ?? '').split(':').some((d) => d !== '' && fs.existsSync(path.join(d, java)));
  if (!path.isAbsolute(java) && !found) return 'no java on PATH (apt-get install -y default-jre-headless)';
  return undefined;
}

/** The zoo.cfg of one server. */
export function zooCfg(dataDir: string, clientPort: number, servers: readonly { id: number; quorum: number; election: number }[], opts: Pick<ZkOptions, 'tickTimeMs' | 'syncLimit' | 'initLimit'>): string {
  return [
    `tickTime=${opts.tickTimeMs}`,
    `initLimit=${opts.initLimit}`,
    `syncLimit=${opts.syncLimit}`,
    `dataDir=${dataDir}`,
    `clientPort=${clientPort}`,
    'clientPortAddress=127.0.0.1',
    'forceSync=yes',
    'maxClientCnxns=0',
    'admin.enableServer=false',
    '4lw.commands.whitelist=srvr,ruok,mntr',
    'autopurge.purgeInterval=1',
    'autopurge.snapRetainCount=3',
    ...servers.map((s) => `server.${s.id}=127.0.0.1:${s.quorum}:${s.election}`),
    '',
  ].join('\n');
}

/** Sends a four-letter command and returns the whole answer. */
export function fourLetter(port: number, cmd: string, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`${cmd} on ${port}: timeout`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(cmd));
    sock.on('data', (d: string) => (buf += d));
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(buf);
    });
  });
}

export class ZkEnsemble extends Ensemble {
  private constructor(group: ProcessGroup, clientPorts: Map<string, number>) {
    super(group, clientPorts);
  }

  static async start(opts: ZkOptions): Promise<ZkEnsemble> {
    const ids = opts.ids ?? ['z1', 'z2', 'z3'];
    const group = new ProcessGroup(opts.baseDir);
    try {
      const ports = await freePorts(3 * ids.length);
      const servers = ids.map((_, i) => ({ id: i + 1, quorum: ports[ids.length + 2 * i] as number, election: ports[ids.length + 2 * i + 1] as number }));
      const clientPorts = new Map(ids.map((id, i) => [id, ports[i] as number]));
      ids.forEach((id, i) => {
        const dir = path.join(opts.baseDir, id);
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(path.join(dir, 'myid'), `${i + 1}\n`);
        const cfg = path.join(opts.baseDir, `${id}.cfg`);
        fs.writeFileSync(cfg, zooCfg(dir, clientPorts.get(id) as number, servers, opts));
        group.spawn(id, {
          command: opts.java ?? 'java',
          args: [`-Xmx${opts.heapMb ?? 512}m`, '-Dzookeeper.root.logger=WARN,CONSOLE', '-Dzookeeper.log.dir=' + opts.baseDir, '-cp', `${ZK_CONF}:${ZK_JAR}`, 'org.apache.zookeeper.server.quorum.QuorumPeerMain', cfg],
        });
      });
      const zk = new ZkEnsemble(group, clientPorts);
      await zk.waitForLeader(opts.healthTimeoutMs ?? 60_000);
      return zk;
    } catch (err) {
      await group.cleanup();
      throw err;
    }
  }

  /** `127.0.0.1:port` connect strings. */
  connectString(ids: readonly string[] = this.ids()): string {
    return ids.map((id) => `127.0.0.1:${this.clientPorts.get(id) ?? 0}`).join(',');
  }

  /** 'leader', 'follower', or an error message. */
  async mode(id: string, timeoutMs = 500): Promise<string> {
    try {
      const out = await fourLetter(this.clientPorts.get(id) ?? 0, 'srvr', timeoutMs);
      return /Mode: (\w+)/.exec(out)?.[1] ?? (out.trim() === '' ? 'no answer' : out.trim().split('\n')[0] ?? '');
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  }

  /** Waits until a running server not in `notIn` is leader and a majority serve; its id. */
  async waitForLeader(timeoutMs: number, notIn: readonly string[] = [], intervalMs = 50): Promise<string> {
    return this.pollLeader('zookeeper leader', timeoutMs, intervalMs, async (running) => {
      const modes = await Promise.all(running.map(async (id) => [id, await this.mode(id)] as const));
      const serving = modes.filter(([, m]) => m === 'leader' || m === 'follower').length;
      const leader = modes.find(([id, m]) => m === 'leader' && !notIn.includes(id));
      return leader !== undefined && serving >= this.majority() ? leader[0] : undefined;
    });
  }

  async restart(id: string, timeoutMs = 60_000): Promise<void> {
    this.group.spawn(id);
    await waitFor(`zookeeper ${id}`, async () => ['leader', 'follower'].includes(await this.mode(id)), timeoutMs, 100, () => this.group.running(id));
  }
}
