// What happened to each state of an execution, computed from its history events.
//
// Events are attributed to the state they belong to by following `previousEventId`: a task's
// events chain back to its `…StateEntered`. The events that close a Parallel or Map
// (`ParallelStateSucceeded`, …) follow the last event of a branch, so they are attributed to the
// innermost container still open on their chain instead.

/** The statuses a state can show, as CSS-friendly names. */
export const Status = Object.freeze({
  SUCCEEDED: 'succeeded',
  RETRIED: 'retried',
  FAILED: 'failed',
  CAUGHT: 'caught',
  RUNNING: 'running',
  CANCELLED: 'cancelled',
  NOT_REACHED: 'not-reached',
});

export const STATUS_LABELS = Object.freeze({
  [Status.SUCCEEDED]: 'Succeeded',
  [Status.RETRIED]: 'Succeeded after retries',
  [Status.FAILED]: 'Failed',
  [Status.CAUGHT]: 'Caught',
  [Status.RUNNING]: 'In progress',
  [Status.CANCELLED]: 'Cancelled',
  [Status.NOT_REACHED]: 'Not reached',
});

const CONTAINER_START = new Set(['ParallelStateStarted', 'MapStateStarted']);
const CONTAINER_END = new Set([
  'ParallelStateSucceeded', 'ParallelStateFailed', 'ParallelStateAborted',
  'MapStateSucceeded', 'MapStateFailed', 'MapStateAborted',
]);
const ATTEMPT = /^(Task|LambdaFunction|Activity)Scheduled$/;
const ATTEMPT_FAILURE = /^(Task|LambdaFunction|Activity)(Failed|TimedOut|StartFailed|ScheduleFailed|SubmitFailed)$/;
const CONTAINER_FAILURE = new Set(['ParallelStateFailed', 'MapStateFailed']);

/** The details object of an event (`stateEnteredEventDetails`, …), or undefined. */
export function detailsOf(event) {
  const key = Object.keys(event).find((k) => k.endsWith('EventDetails'));
  return key ? event[key] : undefined;
}

function isStateEntered(type) {
  return type.endsWith('StateEntered');
}

function isStateExited(type) {
  return type.endsWith('StateExited');
}

/** Map from event id to the name of the state it belongs to (absent for execution events). */
export function attributeEvents(events) {
  const byId = new Map(events.map((event) => [event.id, event]));
  const owner = new Map();

  // The innermost container start still open on the chain before `id`.
  const openContainerStart = (id) => {
    let depth = 0;
    for (let event = byId.get(id); event; event = byId.get(event.previousEventId)) {
      if (CONTAINER_END.has(event.type)) depth += 1;
      else if (CONTAINER_START.has(event.type)) {
        if (depth === 0) return event;
        depth -= 1;
      }
    }
    return undefined;
  };

  for (const event of [...events].sort((a, b) => a.id - b.id)) {
    const { type } = event;
    if (isStateEntered(type) || isStateExited(type)) {
      owner.set(event.id, detailsOf(event)?.name);
    } else if (type.startsWith('Execution')) {
      // Execution events belong to no state.
    } else if (CONTAINER_END.has(type) || type.startsWith('MapIteration')) {
      const start = openContainerStart(event.previousEventId);
      if (start && owner.has(start.id)) owner.set(event.id, owner.get(start.id));
    } else if (owner.has(event.previousEventId)) {
      owner.set(event.id, owner.get(event.previousEventId));
    }
  }
  return owner;
}

/** Every state of a definition (nested ones too), by name, with the Catch targets of each. */
export function statesOf(definition) {
  const states = new Map();
  const visit = (machine) => {
    for (const [name, state] of Object.entries(machine?.States ?? {})) {
      states.set(name, state);
      for (const branch of state.Branches ?? []) visit(branch);
      visit(state.ItemProcessor ?? state.Iterator);
    }
  };
  visit(definition);
  return states;
}

/**
 * What happened to each state: a Map from state name to
 * {status, attempts, failures, lastError, lastCause, enteredAt, exitedAt}.
 * `executionStatus` is DescribeExecution's status (RUNNING, SUCCEEDED, FAILED, …).
 */
export function stateProgress(definition, events, executionStatus) {
  const owner = attributeEvents(events);
  const states = statesOf(definition);
  const ordered = [...events].sort((a, b) => a.id - b.id);
  const progress = new Map();
  for (const name of states.keys()) {
    progress.set(name, {
      status: Status.NOT_REACHED, entries: 0, attempts: 0, failures: 0,
      lastEnteredId: undefined, lastExitedId: undefined, lastFailureId: undefined,
      lastError: undefined, lastCause: undefined, enteredAt: undefined, exitedAt: undefined,
    });
  }

  for (const event of ordered) {
    const entry = progress.get(owner.get(event.id));
    if (!entry) continue;
    const { type } = event;
    if (isStateEntered(type)) {
      entry.entries += 1;
      entry.lastEnteredId = event.id;
      entry.enteredAt ??= event.timestamp;
    } else if (isStateExited(type)) {
      entry.lastExitedId = event.id;
      entry.exitedAt = event.timestamp;
    } else if (ATTEMPT.test(type)) {
      entry.attempts += 1;
    } else if (ATTEMPT_FAILURE.test(type) || CONTAINER_FAILURE.has(type)) {
      entry.failures += 1;
      entry.lastFailureId = event.id;
      entry.lastError = detailsOf(event)?.error ?? entry.lastError;
      entry.lastCause = detailsOf(event)?.cause ?? entry.lastCause;
    }
  }

  // The last time each state was entered, to tell whether a Catch target followed a failure.
  const lastEntered = new Map([...progress].map(([name, entry]) => [name, entry.lastEnteredId]));
  const running = executionStatus === 'RUNNING' || executionStatus === 'PENDING_REDRIVE';

  for (const [name, entry] of progress) {
    if (entry.lastEnteredId === undefined) continue;
    const state = states.get(name);
    const exited = entry.lastExitedId !== undefined && entry.lastExitedId > entry.lastEnteredId;
    const failedSinceEntry = entry.lastFailureId !== undefined && entry.lastFailureId > entry.lastEnteredId;
    const caught = failedSinceEntry && (state.Catch ?? []).some((catcher) => {
      const target = lastEntered.get(catcher.Next);
      return target !== undefined && target > entry.lastFailureId;
    });
    if (state.Type === 'Fail') entry.status = Status.FAILED;
    else if (caught) entry.status = Status.CAUGHT;
    else if (exited) entry.status = entry.failures > 0 ? Status.RETRIED : Status.SUCCEEDED;
    else if (running) entry.status = Status.RUNNING;
    else if (failedSinceEntry) entry.status = Status.FAILED;
    else entry.status = Status.CANCELLED;
  }
  return progress;
}

/**
 * The state an ended execution failed in: of the failed states, the one that failed first (a
 * Task inside a Parallel fails before the Parallel does), or undefined.
 */
export function failedStateName(progress) {
  let found;
  let firstId = Infinity;
  for (const [name, entry] of progress) {
    const id = entry.lastFailureId ?? entry.lastEnteredId;
    if (entry.status === Status.FAILED && id < firstId) {
      firstId = id;
      found = name;
    }
  }
  return found;
}
