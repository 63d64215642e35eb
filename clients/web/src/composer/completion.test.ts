import { describe, expect, it } from 'vitest';

import { MAX_CHOICES, applyChoice, choicesAt } from './completion';

const PATHS = ['input', 'input.features', 'input.name', 'steps.plan', 'steps.plan.entities', 'steps.plan.entities.count', 'steps.api', 'steps.api.ok'];

describe('completion of the paths a condition reads', () => {
  it('offers the paths that continue the one under the caret', () => {
    expect(choicesAt('steps.pl', 8, PATHS)).toEqual({ from: 0, to: 8, options: ['steps.plan', 'steps.plan.entities', 'steps.plan.entities.count'] });
    const text = '"auth" in input.f && steps.api.ok';
    expect(choicesAt(text, 17, PATHS)).toEqual({ from: 10, to: 17, options: ['input.features'] });
  });

  it('offers nothing for an empty word unless asked, nor the path already typed', () => {
    expect(choicesAt('a && ', 5, PATHS)).toBeNull();
    expect(choicesAt('a && ', 5, PATHS, true)?.options).toEqual(PATHS);
    expect(choicesAt('steps.api.ok', 12, PATHS)).toBeNull();
  });

  it('offers nothing inside a string or a number', () => {
    expect(choicesAt('"steps.pl', 9, PATHS)).toBeNull();
    expect(choicesAt("'it\\'s steps.pl", 15, PATHS)).toBeNull();
    expect(choicesAt('"done" == steps.pl', 18, PATHS)?.options).toContain('steps.plan');
    expect(choicesAt('1.5', 3, ['1.5x'])).toBeNull();
  });

  it('replaces the whole path under the caret and puts the caret after the choice', () => {
    const text = 'steps.pl.x == 1';
    const choices = choicesAt(text, 8, PATHS);
    expect(choices).toMatchObject({ from: 0, to: 10 });
    if (!choices) throw new Error('no choices');
    expect(applyChoice(text, choices, 'steps.plan.entities')).toEqual({ text: 'steps.plan.entities == 1', caret: 19 });
    expect(applyChoice('a && inp', { from: 5, to: 8 }, 'input.name')).toEqual({ text: 'a && input.name', caret: 15 });
  });

  it('offers at most 50', () => {
    const many = Array.from({ length: 80 }, (_, index) => `input.f${index}`);
    expect(choicesAt('input.f', 7, many)?.options).toHaveLength(MAX_CHOICES);
  });
});
