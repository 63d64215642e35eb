import { describe, expect, it } from 'vitest';

import { grants } from './session';

describe('grants', () => {
  it('follows the gateway: wildcards grant tenant permissions, never the platform ones', () => {
    expect(grants('*:*', 'chains:execute')).toBe(true);
    expect(grants('chains:*', 'chains:execute')).toBe(true);
    expect(grants('chains:*', 'memory:read')).toBe(false);
    expect(grants('memory:read', 'memory:write')).toBe(false);
    expect(grants('*:*', 'fleet:read')).toBe(false);
    expect(grants('fleet:*', 'fleet:read')).toBe(false);
    expect(grants('fleet:read', 'fleet:read')).toBe(true);
  });
});
