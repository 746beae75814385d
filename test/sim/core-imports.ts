/** Core imports for the simulator in one place. */
export { Replica } from '../../lib/core';
export type { Entry, Message, Ready } from '../../lib/core';
import { TidemarkError } from '../../lib/errors';

/** Operating errors (refusals) are expected in the simulator; assertions are not. */
export function isTidemarkErrorLike(e: unknown): e is TidemarkError {
  return e instanceof TidemarkError;
}
