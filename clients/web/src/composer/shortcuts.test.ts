import { describe, expect, it } from 'vitest';

import { SHORTCUTS, actionOf, keysOf } from './shortcuts';

const press = (key: string, modifiers: Partial<{ ctrlKey: boolean; metaKey: boolean; shiftKey: boolean; altKey: boolean }> = {}) =>
  ({ key, ctrlKey: false, metaKey: false, shiftKey: false, altKey: false, ...modifiers });

describe('the composer’s shortcuts', () => {
  it('does what the help says for every key it lists', () => {
    for (const shortcut of SHORTCUTS) {
      for (const chord of shortcut.keys) {
        const parts = chord.split('+');
        const key = parts.at(-1)!;
        const typed = parts.includes('Shift') && key.length === 1 ? key.toUpperCase() : key.toLowerCase().length === 1 ? key.toLowerCase() : key;
        expect(actionOf(press(typed, { ctrlKey: parts.includes('Control'), shiftKey: parts.includes('Shift') })), chord).toBe(shortcut.action);
      }
    }
  });

  it('takes Command for Control, and leaves other keys to the page', () => {
    expect(actionOf(press('c', { metaKey: true }))).toBe('copy');
    expect(actionOf(press('c'))).toBeNull();
    expect(actionOf(press('c', { ctrlKey: true, altKey: true }))).toBeNull();
    expect(actionOf(press('p', { ctrlKey: true }))).toBeNull();
    expect(actionOf(press('Enter'))).toBeNull();
  });

  it('names the keys of an action as aria-keyshortcuts does', () => {
    expect(keysOf('redo')).toBe('Control+Shift+Z Control+Y');
    expect(keysOf('delete')).toBe('Delete Backspace');
  });
});
