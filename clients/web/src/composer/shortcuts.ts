/**
 * The composer's keyboard shortcuts: one table, read both by the key handler and by the
 * "Keyboard shortcuts" help, so what the help says is what the keys do. They apply on the page
 * outside text fields (there the keys edit the text).
 */
export type Action = 'copy' | 'cut' | 'paste' | 'delete' | 'selectAll' | 'deselect' | 'undo' | 'redo' | 'help';

export interface Shortcut {
  action: Action;
  /** As `aria-keyshortcuts` spells them (WAI-ARIA), and as the help shows them. */
  keys: string[];
  does: string;
}

export const SHORTCUTS: Shortcut[] = [
  { action: 'copy', keys: ['Control+C'], does: 'Copy the selected steps' },
  { action: 'cut', keys: ['Control+X'], does: 'Cut the selected steps' },
  { action: 'paste', keys: ['Control+V'], does: 'Paste the copied steps, with new ids' },
  { action: 'delete', keys: ['Delete', 'Backspace'], does: 'Delete the selected steps and connections' },
  { action: 'selectAll', keys: ['Control+A'], does: 'Select every step' },
  { action: 'deselect', keys: ['Escape'], does: 'Select nothing' },
  { action: 'undo', keys: ['Control+Z'], does: 'Undo' },
  { action: 'redo', keys: ['Control+Shift+Z', 'Control+Y'], does: 'Redo' },
  { action: 'help', keys: ['?'], does: 'Show these shortcuts' },
];

/** The `aria-keyshortcuts` of an action. */
export function keysOf(action: Action): string {
  return SHORTCUTS.find((shortcut) => shortcut.action === action)?.keys.join(' ') ?? '';
}

export interface Keypress {
  key: string;
  ctrlKey: boolean;
  metaKey: boolean;
  shiftKey: boolean;
  altKey: boolean;
}

/** The action a key press asks for, if any. Command stands for Control, as on a Mac. */
export function actionOf(press: Keypress): Action | null {
  if (press.altKey) return null;
  const key = press.key.toLowerCase();
  if (press.ctrlKey || press.metaKey) {
    switch (key) {
      case 'c':
        return press.shiftKey ? null : 'copy';
      case 'x':
        return press.shiftKey ? null : 'cut';
      case 'v':
        return press.shiftKey ? null : 'paste';
      case 'a':
        return press.shiftKey ? null : 'selectAll';
      case 'z':
        return press.shiftKey ? 'redo' : 'undo';
      case 'y':
        return 'redo';
      default:
        return null;
    }
  }
  switch (press.key) {
    case 'Delete':
    case 'Backspace':
      return 'delete';
    case 'Escape':
      return 'deselect';
    case '?':
      return 'help';
    default:
      return null;
  }
}
