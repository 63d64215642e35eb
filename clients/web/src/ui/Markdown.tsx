/** Markdown (`markdown.ts`) as React elements: text stays text, links open in a new tab. */
import type { ReactNode } from 'react';

import { type Inline, parseMarkdown } from './markdown';

function inline(parts: Inline[]): ReactNode[] {
  return parts.map((part, index) => {
    switch (part.kind) {
      case 'text':
        return part.text;
      case 'code':
        return <code key={index} className="rounded bg-slate-100 px-1 font-mono text-sm dark:bg-slate-800">{part.text}</code>;
      case 'strong':
        return <strong key={index}>{inline(part.children)}</strong>;
      case 'em':
        return <em key={index}>{inline(part.children)}</em>;
      case 'link':
        return <a key={index} className="link" href={part.href} target="_blank" rel="noopener noreferrer">{inline(part.children)}</a>;
    }
  });
}

const HEADINGS = { 1: 'text-xl', 2: 'text-lg', 3: 'text-base', 4: 'text-sm' } as const;

export function Markdown({ source }: { source: string }) {
  return (
    <div className="space-y-3">
      {parseMarkdown(source).map((block, index) => {
        switch (block.kind) {
          case 'heading': {
            // Inside a page whose own headings are h1 and h2: the document's start at h3.
            const Tag = (['h3', 'h4', 'h5', 'h6'] as const)[block.level - 1] ?? 'h6';
            return <Tag key={index} className={`font-semibold ${HEADINGS[block.level]}`}>{inline(block.children)}</Tag>;
          }
          case 'paragraph':
            return <p key={index}>{inline(block.children)}</p>;
          case 'list': {
            const List = block.ordered ? 'ol' : 'ul';
            return (
              <List key={index} className={`${block.ordered ? 'list-decimal' : 'list-disc'} pl-6`}>
                {block.items.map((item, position) => <li key={position}>{inline(item)}</li>)}
              </List>
            );
          }
          case 'code':
            return <pre key={index} tabIndex={0} className="overflow-auto rounded-md bg-slate-100 p-3 text-sm dark:bg-slate-800"><code>{block.text}</code></pre>;
          case 'quote':
            return <blockquote key={index} className="border-l-4 border-slate-300 pl-3 italic dark:border-slate-600">{inline(block.children)}</blockquote>;
        }
      })}
    </div>
  );
}
