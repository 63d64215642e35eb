import { describe, expect, it } from 'vitest';

import { History, UNDO_LIMIT } from './history';

describe('the composer history', () => {
  it('undoes and redoes in order, and a new change drops what was undone', () => {
    const history = new History<string>();
    history.record('a');
    history.record('b');
    expect(history.undo('c')).toBe('b');
    expect(history.undo('b')).toBe('a');
    expect(history.undo('a')).toBeUndefined();
    expect(history.redo('a')).toBe('b');
    history.record('b');
    expect(history.canRedo).toBe(false);
    expect(history.undo('x')).toBe('b');
  });

  it('keeps at most its limit', () => {
    const history = new History<number>();
    for (let step = 0; step < UNDO_LIMIT + 5; step += 1) history.record(step);
    let undone = 0;
    while (history.undo(-1) !== undefined) undone += 1;
    expect(undone).toBe(UNDO_LIMIT);
  });
});
