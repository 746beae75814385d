/**
 * Loads the native addon (the only module that touches it) and types its surface.
 * The binary is found by node-gyp-build: `prebuilds/<platform>-<arch>/` inside the
 * package first, then a local `build/Release/` from a source build.
 */
import * as path from 'node:path';
import { TidemarkError, ErrorCodes } from '../errors';

/** The raw native surface. Arguments are validated in TypeScript before they get here. */
export interface NativeBinding {
  crc32c(data: Uint8Array, seed: number): number;
  crc32cImplementation(): string;
  crc32cForceTable(force: boolean): void;
}

const packageRoot = path.join(__dirname, '..', '..');
let cached: NativeBinding | undefined;

/** The native binding, loaded on first use. Throws `TM_NO_BINARY` with what to do when it is missing. */
export function binding(): NativeBinding {
  if (cached !== undefined) return cached;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const load = require('node-gyp-build') as (dir: string) => unknown;
    cached = load(packageRoot) as NativeBinding;
    return cached;
  } catch (err) {
    throw new TidemarkError(
      ErrorCodes.NO_BINARY,
      `no tidemark native binary for ${process.platform}-${process.arch} (Node ${process.version}, N-API 8). ` +
        'The npm package ships prebuilt binaries for linux-x64 and linux-arm64; on another platform build from source: ' +
        'install a C++17 compiler, python3 and make, then run `npm rebuild tidemark --build-from-source` ' +
        '(or `npx node-gyp rebuild` inside the package directory).',
      { cause: err },
    );
  }
}
