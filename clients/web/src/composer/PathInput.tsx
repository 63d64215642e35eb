/**
 * A one-line expression field that completes the paths it may read as they are typed: an ARIA
 * combobox (the WAI-ARIA pattern's list autocomplete) whose list shows the known paths that
 * continue the one under the caret. Arrow keys move in the list, Enter or Tab take the choice,
 * Escape closes it, Control+Space opens it on an empty path; a click takes one too.
 */
import { type KeyboardEvent, useRef, useState } from 'react';

import { type Choices, applyChoice, choicesAt } from './completion';

export function PathInput({ id, value, paths, invalid, describedBy, onChange }: {
  id: string;
  value: string;
  paths: string[];
  invalid: boolean;
  describedBy: string;
  onChange: (value: string) => void;
}) {
  const input = useRef<HTMLInputElement>(null);
  const [choices, setChoices] = useState<Choices | null>(null);
  const [active, setActive] = useState(0);
  const listId = `${id}-choices`;

  function offer(text: string, caret: number | null, explicit = false) {
    setChoices(caret === null ? null : choicesAt(text, caret, paths, explicit));
    setActive(0);
  }

  function take(path: string) {
    if (!choices) return;
    const next = applyChoice(value, choices, path);
    onChange(next.text);
    setChoices(null);
    // After React writes the new value: the caret goes after the path taken.
    requestAnimationFrame(() => input.current?.setSelectionRange(next.caret, next.caret));
  }

  function key(event: KeyboardEvent<HTMLInputElement>) {
    if (event.key === ' ' && event.ctrlKey) {
      event.preventDefault();
      offer(value, event.currentTarget.selectionStart, true);
      return;
    }
    if (!choices) return;
    const count = choices.options.length;
    switch (event.key) {
      case 'ArrowDown':
        event.preventDefault();
        setActive((active + 1) % count);
        return;
      case 'ArrowUp':
        event.preventDefault();
        setActive((active - 1 + count) % count);
        return;
      case 'Enter':
      case 'Tab': {
        const chosen = choices.options[active];
        if (chosen === undefined) return;
        event.preventDefault();
        take(chosen);
        return;
      }
      case 'Escape':
        // Closes the list only; the composer's Escape (select nothing) does not apply in a field.
        event.preventDefault();
        setChoices(null);
        return;
    }
  }

  const open = choices !== null;
  return (
    <div className="relative">
      <input ref={input} id={id} className="input font-mono" value={value} spellCheck={false} autoComplete="off"
        role="combobox" aria-autocomplete="list" aria-expanded={open} aria-controls={listId}
        aria-activedescendant={open ? `${listId}-${active}` : undefined}
        aria-invalid={invalid} aria-describedby={describedBy}
        onChange={(event) => {
          onChange(event.target.value);
          offer(event.target.value, event.target.selectionStart);
        }}
        onKeyDown={key}
        onBlur={() => setChoices(null)} />
      <ul id={listId} role="listbox" aria-label="Paths" hidden={!open}
        className="absolute z-10 mt-1 max-h-56 w-full overflow-y-auto rounded-md border border-slate-300 bg-white py-1 text-sm shadow-lg dark:border-slate-600 dark:bg-slate-900">
        {choices?.options.map((path, index) => (
          <li key={path} id={`${listId}-${index}`} role="option" aria-selected={index === active}
            className="cursor-pointer px-3 py-1 font-mono aria-selected:bg-indigo-100 aria-selected:text-indigo-950 dark:aria-selected:bg-indigo-900 dark:aria-selected:text-indigo-50"
            // Taken before the field loses focus (which closes the list).
            onMouseDown={(event) => { event.preventDefault(); take(path); }}>
            {path}
          </li>
        ))}
      </ul>
    </div>
  );
}
