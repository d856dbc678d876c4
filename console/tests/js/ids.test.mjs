// Image ids as the steps derive them (steps/src/event.rs: image_id_for_key).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeEventKey, imageIdForKey, imageIdOfInput } from '../../assets/ids.js';

test('an upload through the API keeps its id', async () => {
  assert.equal(await imageIdForKey('uploads/3f1c2a9e-0b7d-4c1e-9a55-2d1f0e6b7c88'), '3f1c2a9e-0b7d-4c1e-9a55-2d1f0e6b7c88');
});

test('any other key maps to k- and 32 hex digits of its SHA-256', async () => {
  assert.equal(await imageIdForKey('uploads/nested/x'), 'k-5ff2313671715dcbdffcc935cf190564');
});

test('event keys are form-URL-decoded once', async () => {
  assert.equal(decodeEventKey('uploads/my+photo%2B1.jpg'), 'uploads/my photo+1.jpg');
  const input = JSON.stringify({ detail: { object: { key: 'uploads/my+photo%2B1.jpg' } } });
  assert.equal(await imageIdOfInput(input), 'k-a12872b5e1aa4048e0a3879218208e34');
  assert.equal(await imageIdOfInput('not json'), null);
  assert.equal(await imageIdOfInput('{"detail":{}}'), null);
});
