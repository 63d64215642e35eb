import { describe, expect, it } from 'vitest';

import { detailBeyondErrors, type Problem } from './problem';

const invalid = (detail: string, errors: Problem['errors']): Problem => ({
  type: 'about:blank',
  title: 'Bad Request',
  status: 400,
  detail,
  errors,
});

describe('detailBeyondErrors', () => {
  it('drops a detail that only repeats the field errors', () => {
    const problem = invalid('name: must be 1 to 100 characters; cron: is not a schedule', [
      { field: 'name', message: 'must be 1 to 100 characters' },
      { field: 'cron', message: 'is not a schedule' },
    ]);
    expect(detailBeyondErrors(problem)).toBeUndefined();
  });

  it('keeps a detail that says something else', () => {
    const problem = invalid('The chain has a cycle through plan and build', [
      { field: 'definition.steps[1].depends_on', message: 'makes a cycle' },
    ]);
    expect(detailBeyondErrors(problem)).toBe('The chain has a cycle through plan and build');
  });

  it('keeps the detail of a problem without field errors', () => {
    const problem = invalid('Too many requests', undefined);
    expect(detailBeyondErrors(problem)).toBe('Too many requests');
  });
});
