/**
 * Server-Sent Events read with fetch rather than EventSource: fetch can send the access token
 * as a header (never in a URL, where logs keep it) and `Last-Event-ID` on every reconnection.
 */
export interface SseMessage {
  id?: string;
  event: string;
  data: string;
}

/** The complete messages in `buffer`, and what is left of it for the next chunk. */
export function parseSse(buffer: string): { messages: SseMessage[]; rest: string } {
  const messages: SseMessage[] = [];
  const blocks = buffer.replace(/\r\n?/g, '\n').split('\n\n');
  const rest = blocks.pop() ?? '';
  for (const block of blocks) {
    let id: string | undefined;
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'id') id = value;
      else if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length > 0) messages.push({ ...(id !== undefined ? { id } : {}), event, data: data.join('\n') });
  }
  return { messages, rest };
}
