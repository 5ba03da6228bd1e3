// Test plugin: misbehaves on purpose on one row, in JavaScript, so host tests can prove that
// the limits hold for an interpreter too and that the SDK does not blame a row for the
// engine running out of memory.
//
// Configuration: `mode` (required) and `row` (a file row number, default 0). Every row
// other than `row` gives an entity of type `Row` whose external id is the row number. On
// `row`:
//
// | mode         | what happens                                                              |
// |--------------|---------------------------------------------------------------------------|
// | `raise`      | throws `Error("bad value on row N")`: an ordinary row error                |
// | `loop`       | loops forever (the time limit must stop it)                               |
// | `alloc`      | allocates 1 MiB blocks without end (the memory cap must stop it)          |
// | `engine-oom` | throws "out of memory", as SpiderMonkey does when its heap is exhausted:  |
// |              | not the row's fault, so the SDK lets it trap the instance                 |
// | `heap-full`  | throws "out of memory" only when this instance has transformed a batch    |
// |              | before (a heap filled by earlier batches): on a fresh instance the row    |
// |              | goes through                                                              |

import { Info, exportPlugin } from 'stagepush-plugin';

const MODES = ['raise', 'loop', 'alloc', 'engine-oom', 'heap-full'];

class Misbehave {
  static describe() {
    return new Info('misbehave', '0.1.0')
      .description('test plugin: misbehaves on purpose on one row (JavaScript)')
      .configKey('mode', MODES.join(', '), true)
      .configKey('row', 'the file row number to misbehave on', false, '0');
  }

  static init(_schema, config) {
    const mode = config.require('mode');
    if (!MODES.includes(mode)) throw new Error(`unknown mode ${mode} (modes: ${MODES.join(', ')})`);
    return new Misbehave(mode, Number(config.get('row')));
  }

  constructor(mode, row) {
    this.mode = mode;
    this.row = row;
    this.batches = 0; // batches this instance has started
  }

  transform(row, out) {
    if (row.index === 0) this.batches += 1;
    const n = row.rowNumber;
    if (n === this.row) {
      if (this.mode === 'raise') throw new Error(`bad value on row ${n}`);
      if (this.mode === 'loop') for (;;) {}
      if (this.mode === 'alloc') {
        const blocks = [];
        for (;;) blocks.push(new Uint8Array(1 << 20).fill(1));
      }
      if (this.mode === 'engine-oom' || (this.mode === 'heap-full' && this.batches > 1)) throw 'out of memory';
    }
    out.entity('Row', String(n)).finish();
  }
}

export const plugin = exportPlugin(Misbehave);
