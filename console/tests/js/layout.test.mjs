// The graph's geometry: every state placed once, nothing overlapping, edges where the ASL says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { layoutMachine, transitionsOf } from '../../assets/layout.js';

const pipeline = JSON.parse(readFileSync(new URL('../../../statemachine/image-pipeline.asl.json', import.meta.url)));

function overlaps(a, b) {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

function inside(layout, [x, y]) {
  return x >= 0 && y >= 0 && x <= layout.width && y <= layout.height;
}

test('the pipeline: every top-level state once, no overlap, flow top-down', () => {
  const layout = layoutMachine(pipeline, { markers: true });
  const names = layout.nodes.map((n) => n.name).sort();
  assert.deepEqual(names, ['Analyse', 'End', 'RecordRejected', 'Rejected', 'Start', 'Validate', 'WriteMetadata']);
  for (const a of layout.nodes) {
    for (const b of layout.nodes) if (a !== b) assert.ok(!overlaps(a, b), `${a.name} overlaps ${b.name}`);
  }
  const node = (name) => layout.nodes.find((n) => n.name === name);
  assert.ok(node('Validate').y < node('Analyse').y);
  assert.ok(node('Analyse').y < node('WriteMetadata').y);
  assert.ok(node('RecordRejected').y < node('Rejected').y, 'a Catch target is below every state that catches into it');
  assert.ok(node('Analyse').y < node('RecordRejected').y);
  for (const edge of layout.edges) for (const point of edge.points) assert.ok(inside(layout, point), `${edge.from}->${edge.to} leaves the box`);
});

test('the Parallel holds its branches side by side', () => {
  const layout = layoutMachine(pipeline);
  const analyse = layout.nodes.find((n) => n.name === 'Analyse');
  assert.equal(analyse.children.length, 2);
  const [exif, resize] = analyse.children;
  assert.deepEqual(exif.layout.nodes.map((n) => n.name), ['ReadExif']);
  assert.deepEqual(resize.layout.nodes.map((n) => n.name), ['Resize']);
  assert.ok(exif.dx + exif.layout.width <= resize.dx, 'branches do not overlap');
  assert.ok(resize.dx + resize.layout.width <= analyse.width);
  assert.ok(exif.dy + exif.layout.height <= analyse.height);
});

test('edges: next, catch (from both catching states), start and end', () => {
  const layout = layoutMachine(pipeline, { markers: true });
  const edges = layout.edges.map((e) => `${e.from}-${e.kind}->${e.to}`).sort();
  assert.deepEqual(edges, [
    'Analyse-catch->RecordRejected', 'Analyse-next->WriteMetadata', 'RecordRejected-next->Rejected',
    'Rejected-end->End', 'Start-start->Validate', 'Validate-catch->RecordRejected', 'Validate-next->Analyse',
    'WriteMetadata-end->End',
  ]);
});

test('an edge that skips a layer goes around the states in between', () => {
  const layout = layoutMachine(pipeline, { markers: true });
  const analyse = layout.nodes.find((n) => n.name === 'Analyse');
  const skip = layout.edges.find((e) => e.from === 'Validate' && e.to === 'RecordRejected');
  for (let i = 1; i < skip.points.length; i += 1) {
    const [[x1, y1], [x2, y2]] = [skip.points[i - 1], skip.points[i]];
    const segment = { x: Math.min(x1, x2), y: Math.min(y1, y2), width: Math.abs(x2 - x1) || 0.1, height: Math.abs(y2 - y1) || 0.1 };
    assert.ok(!overlaps(segment, analyse), `segment ${i} crosses Analyse`);
  }
});

test('loops are drawn as back edges and Choice rules, Default and Map processors are laid out', () => {
  const machine = {
    StartAt: 'Check',
    States: {
      Check: { Type: 'Choice', Choices: [{ Variable: '$.again', BooleanEquals: true, Next: 'Work' }], Default: 'Each' },
      Work: { Type: 'Task', Resource: 'arn:aws:lambda:us-east-1:1:function:w', Next: 'Check' },
      Each: { Type: 'Map', ItemProcessor: { StartAt: 'One', States: { One: { Type: 'Pass', End: true } } }, Next: 'Done' },
      Done: { Type: 'Succeed' },
    },
  };
  const layout = layoutMachine(machine, { markers: true });
  const back = layout.edges.filter((e) => e.back);
  assert.deepEqual(back.map((e) => `${e.from}->${e.to}`), ['Work->Check']);
  const map = layout.nodes.find((n) => n.name === 'Each');
  assert.equal(map.children[0].layout.nodes[0].name, 'One');
  assert.deepEqual(transitionsOf(machine.States.Check).map((t) => t.kind), ['choice', 'default']);
});

test('a state no transition reaches is still drawn', () => {
  const layout = layoutMachine({ StartAt: 'A', States: { A: { Type: 'Pass', End: true }, Orphan: { Type: 'Pass', End: true } } });
  assert.deepEqual(layout.nodes.map((n) => n.name).sort(), ['A', 'Orphan']);
});
