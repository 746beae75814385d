// The writer thread of a Log (implemented in writer.cc as Log members):
//
//   wait for queued items -> take them all -> for each append item: seal the
//   chained CRCs, lay the frames out in the active segment (rotating to the
//   prepared spare when full), pad to the block boundary (promise 2), one
//   pwrite per segment part, one sync -> one report to JS per iteration.
//
// Failure rules (promise 4): ENOSPC before anything of a batch is durable, or a
// failure to prepare the next segment file (before anything is written),
// rejects that batch and everything queued behind it (TM_NOSPC / TM_IO) and
// rolls the next index back (the log stays usable; frames of it that reached the
// segment are zeroed before the segment is used further, and every spare a batch
// needs is taken before it writes); any other write or sync failure
// poisons the log: everything pending and later rejects TM_POISONED with the
// original errno, and nothing is retried.
#pragma once

#include "log.h"
