// What the graph colours each state with, from histories shaped as the engine records them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { attributeEvents, stateProgress, failedStateName, Status } from '../../assets/states.js';

const definition = JSON.parse(readFileSync(new URL('../../../statemachine/image-pipeline.asl.json', import.meta.url)));

/** Builds a history: each step is [type, previous (an event id, default: the last one), details]. */
function history(steps) {
  const events = [];
  for (const [type, previous, details] of steps) {
    const id = events.length + 1;
    const event = { id, type, previousEventId: previous ?? id - 1, timestamp: 1_700_000_000 + id / 10 };
    if (details) {
      const key = type.endsWith('StateEntered') ? 'stateEnteredEventDetails'
        : type.endsWith('StateExited') ? 'stateExitedEventDetails'
          : `${type[0].toLowerCase()}${type.slice(1)}EventDetails`;
      event[key] = details;
    }
    events.push(event);
  }
  return events;
}

const entered = (type, name, previous) => [`${type}StateEntered`, previous, { name, input: '{}' }];
const exited = (type, name, previous) => [`${type}StateExited`, previous, { name, output: '{}' }];
const lambdaOk = () => [['LambdaFunctionScheduled', undefined, { resource: 'arn:aws:lambda:us-east-1:1:function:f' }], ['LambdaFunctionStarted'], ['LambdaFunctionSucceeded', undefined, { output: '{}' }]];
const lambdaFails = (error) => [['LambdaFunctionScheduled', undefined, { resource: 'arn:aws:lambda:us-east-1:1:function:f' }], ['LambdaFunctionStarted'], ['LambdaFunctionFailed', undefined, { error, cause: 'it broke' }]];

// Ids: 1 ExecutionStarted, 2 Validate entered … 6 Validate exited, 7 Analyse entered,
// 8 ParallelStateStarted; the branches interleave after 8.
const upToAnalyse = [
  ['ExecutionStarted', 0, { input: '{}' }],
  entered('Task', 'Validate'), ...lambdaOk(), exited('Task', 'Validate'),
  entered('Parallel', 'Analyse'), ['ParallelStateStarted'],
];

test('a successful run colours every state on its path and leaves the others unreached', () => {
  const events = history([
    ...upToAnalyse,
    entered('Task', 'ReadExif', 8), // 9
    entered('Task', 'Resize', 8), // 10
    ['LambdaFunctionScheduled', 9], ['LambdaFunctionScheduled', 10], // 11, 12
    ['LambdaFunctionStarted', 11], ['LambdaFunctionStarted', 12], // 13, 14
    ['LambdaFunctionSucceeded', 13, { output: '{}' }], ['LambdaFunctionSucceeded', 14, { output: '{}' }], // 15, 16
    exited('Task', 'ReadExif', 15), exited('Task', 'Resize', 16), // 17, 18
    ['ParallelStateSucceeded', 18], exited('Parallel', 'Analyse'), // 19, 20
    entered('Task', 'WriteMetadata'), ...lambdaOk(), exited('Task', 'WriteMetadata'),
    ['ExecutionSucceeded', undefined, { output: '{}' }],
  ]);
  const owners = attributeEvents(events);
  assert.equal(owners.get(13), 'ReadExif');
  assert.equal(owners.get(16), 'Resize');
  assert.equal(owners.get(19), 'Analyse', 'the event closing a Parallel belongs to it, not to its last branch');
  assert.equal(owners.get(events.length), undefined);

  const progress = stateProgress(definition, events, 'SUCCEEDED');
  for (const name of ['Validate', 'Analyse', 'ReadExif', 'Resize', 'WriteMetadata']) {
    assert.equal(progress.get(name).status, Status.SUCCEEDED, name);
  }
  assert.equal(progress.get('RecordRejected').status, Status.NOT_REACHED);
  assert.equal(progress.get('Rejected').status, Status.NOT_REACHED);
  assert.equal(failedStateName(progress), undefined);
});

/** Resize fails on every attempt (1 + 5 retries); the Parallel fails; so does the execution. */
function failedResize() {
  const resizeAttempts = [];
  for (let attempt = 0; attempt < 6; attempt += 1) resizeAttempts.push(...lambdaFails('TransientError'));
  return [
    ...upToAnalyse,
    entered('Task', 'ReadExif', 8), ...lambdaOk(), exited('Task', 'ReadExif'), // 9 … 13
    entered('Task', 'Resize', 8), ...resizeAttempts, // 14, then 15 … 32
    ['ParallelStateFailed'], // 33
    ['ExecutionFailed', undefined, { error: 'TransientError', cause: 'it broke' }],
  ];
}

test('a task that outlasts its retries is failed, and so is its Parallel; the branch that finished succeeded', () => {
  const events = history(failedResize());
  const progress = stateProgress(definition, events, 'FAILED');
  assert.equal(progress.get('Resize').status, Status.FAILED);
  assert.equal(progress.get('Resize').attempts, 6);
  assert.equal(progress.get('Resize').lastError, 'TransientError');
  assert.equal(progress.get('Analyse').status, Status.FAILED);
  assert.equal(progress.get('ReadExif').status, Status.SUCCEEDED);
  assert.equal(progress.get('Validate').status, Status.SUCCEEDED);
  assert.equal(progress.get('WriteMetadata').status, Status.NOT_REACHED);
  assert.equal(failedStateName(progress), 'Resize', 'the task failed first, then its Parallel');
});

test('while retries are pending the task is in progress', () => {
  const events = history(failedResize().slice(0, 20));
  const progress = stateProgress(definition, events, 'RUNNING');
  assert.equal(progress.get('Resize').status, Status.RUNNING);
  assert.equal(progress.get('Analyse').status, Status.RUNNING);
});

test('after a redrive the failed task is run again: succeeded after retries', () => {
  const failed = failedResize();
  const redriven = history([
    ...failed,
    ['ExecutionRedriven', undefined, { redriveCount: 1 }], // 35
    entered('Parallel', 'Analyse'), ['ParallelStateStarted'], // 36, 37
    entered('Task', 'Resize', 37), ...lambdaOk(), exited('Task', 'Resize'), // 38 … 42
    ['ParallelStateSucceeded'], exited('Parallel', 'Analyse'),
    entered('Task', 'WriteMetadata'), ...lambdaOk(), exited('Task', 'WriteMetadata'),
    ['ExecutionSucceeded', undefined, { output: '{}' }],
  ]);
  const progress = stateProgress(definition, redriven, 'SUCCEEDED');
  assert.equal(progress.get('Resize').status, Status.RETRIED);
  assert.equal(progress.get('Resize').attempts, 7);
  assert.equal(progress.get('Analyse').status, Status.RETRIED);
  assert.equal(progress.get('ReadExif').status, Status.SUCCEEDED, 'replayed from its record, not run again');
  assert.equal(progress.get('WriteMetadata').status, Status.SUCCEEDED);
});

test('a permanent error is caught into RecordRejected, and the Fail state it leads to is failed', () => {
  const events = history([
    ['ExecutionStarted', 0, { input: '{}' }],
    entered('Task', 'Validate'), ...lambdaFails('InvalidImage'),
    entered('Task', 'RecordRejected'), ...lambdaOk(), exited('Task', 'RecordRejected'),
    entered('Fail', 'Rejected'),
    ['ExecutionFailed', undefined, { error: 'InvalidImage', cause: 'not an image' }],
  ]);
  const progress = stateProgress(definition, events, 'FAILED');
  assert.equal(progress.get('Validate').status, Status.CAUGHT);
  assert.equal(progress.get('RecordRejected').status, Status.SUCCEEDED);
  assert.equal(progress.get('Rejected').status, Status.FAILED);
  assert.equal(progress.get('Analyse').status, Status.NOT_REACHED);
  assert.equal(failedStateName(progress), 'Rejected');
});

test('a state left unfinished by an aborted execution is cancelled', () => {
  const events = history([
    ['ExecutionStarted', 0, { input: '{}' }],
    entered('Task', 'Validate'), ['LambdaFunctionScheduled'], ['LambdaFunctionStarted'],
    ['ExecutionAborted', undefined, {}],
  ]);
  const progress = stateProgress(definition, events, 'ABORTED');
  assert.equal(progress.get('Validate').status, Status.CANCELLED);
});
