/**
 * The composer's undo and redo: the graphs before each change to the definition (selection and
 * a move under way are not changes; a move that ended is, as the steps keep their places in the
 * definition), at most `UNDO_LIMIT` of them.
 */
export const UNDO_LIMIT = 100;

export class History<T> {
  private past: T[] = [];
  private future: T[] = [];

  /** Remembers `current` before it is changed; what was undone can no longer be redone. */
  record(current: T): void {
    this.past.push(current);
    if (this.past.length > UNDO_LIMIT) this.past.shift();
    this.future = [];
  }

  /** The state before `current`, if any; `current` can then be redone. */
  undo(current: T): T | undefined {
    const previous = this.past.pop();
    if (previous !== undefined) this.future.push(current);
    return previous;
  }

  /** The state `current` was undone from, if any. */
  redo(current: T): T | undefined {
    const next = this.future.pop();
    if (next !== undefined) this.past.push(current);
    return next;
  }

  get canUndo(): boolean {
    return this.past.length > 0;
  }

  get canRedo(): boolean {
    return this.future.length > 0;
  }
}
