// Child process body for parallel verification: checks one stretch of the trail and reports back.
// (Processes, not worker threads: here, hashing in two threads of one process scaled to 1.3×, in
// two processes to 1.8×.)
import { verifyRange, type RangeTask } from './verify-range.js';

process.once('message', (task: RangeTask) => {
  verifyRange(task, (rows) => process.send!({ progress: rows })).then(
    (result) => process.send!({ result }, () => process.exit(0)),
    (error: Error) => process.send!({ error: error.message }, () => process.exit(1)),
  );
});
