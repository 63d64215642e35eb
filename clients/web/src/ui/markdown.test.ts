import { describe, expect, it } from 'vitest';

import { parseInline, parseMarkdown } from './markdown';

describe('parseMarkdown', () => {
  it('reads headings, paragraphs, lists and fenced code', () => {
    const blocks = parseMarkdown('# Greeter\n\nSays **hello**\ntwice.\n\n- one\n- two\n\n```\nrun()\n```\n');
    expect(blocks.map((block) => block.kind)).toEqual(['heading', 'paragraph', 'list', 'code']);
    expect(blocks[1]).toEqual({
      kind: 'paragraph',
      children: [
        { kind: 'text', text: 'Says ' },
        { kind: 'strong', children: [{ kind: 'text', text: 'hello' }] },
        { kind: 'text', text: ' twice.' },
      ],
    });
    expect(blocks[2]).toMatchObject({ kind: 'list', ordered: false, items: [[{ text: 'one' }], [{ text: 'two' }]] });
    expect(blocks[3]).toEqual({ kind: 'code', text: 'run()' });
  });

  it('keeps markup as text: nothing becomes HTML', () => {
    const blocks = parseMarkdown('<script>alert(1)</script> <img src=x onerror=alert(1)>');
    expect(blocks).toEqual([
      { kind: 'paragraph', children: [{ kind: 'text', text: '<script>alert(1)</script> <img src=x onerror=alert(1)>' }] },
    ]);
  });
});

describe('parseInline', () => {
  it('links only to http(s) and mailto', () => {
    expect(parseInline('[docs](https://example.com/d)')).toEqual([
      { kind: 'link', href: 'https://example.com/d', children: [{ kind: 'text', text: 'docs' }] },
    ]);
    expect(parseInline('[click](javascript:alert(1))')).toEqual([{ kind: 'text', text: 'click' }, { kind: 'text', text: ')' }]);
  });
});
