// SARIF 2.1.0 results as editor ranges. security_scanner returns its findings as JSON and writes
// them as SARIF into its run's files (`reports/security-scan.sarif`): the SARIF is what is read
// here, so any SARIF producer's report maps the same way.
//
// SARIF lines and columns count from 1. security_scanner counts its columns in characters
// (Unicode scalar values) where the editor counts UTF-16 code units, so a column is converted
// with the line's own text: a finding after an emoji still lands on its token.

export type Severity = 'error' | 'warning' | 'information' | 'hint';

/** A result as a 0-based range of the document, with what the Problems panel shows. */
export interface Finding {
  uri: string;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
  severity: Severity;
  message: string;
  rule: string;
}

interface Region {
  startLine?: number;
  startColumn?: number;
  endLine?: number;
  endColumn?: number;
}

interface Result {
  ruleId?: string;
  level?: string;
  message?: { text?: string };
  locations?: { physicalLocation?: { artifactLocation?: { uri?: string }; region?: Region } }[];
  properties?: { cwe?: string };
}

const LEVELS: Record<string, Severity> = { error: 'error', warning: 'warning', note: 'information', none: 'hint' };

/** The results of every run of a SARIF log; `lines` is the scanned text, split into lines. */
export function findingsFromSarif(log: unknown, lines: readonly string[]): Finding[] {
  const runs = (log as { runs?: { results?: Result[] }[] } | null)?.runs;
  if (!Array.isArray(runs)) throw new Error('not a SARIF log: no runs');
  return runs.flatMap((run) => (run.results ?? []).map((result) => toFinding(result, lines)));
}

function toFinding(result: Result, lines: readonly string[]): Finding {
  const location = result.locations?.[0]?.physicalLocation;
  const region = location?.region ?? {};
  const last = Math.max(lines.length - 1, 0);
  const line = clamp((region.startLine ?? 1) - 1, 0, last);
  const text = lines[line] ?? '';
  const column = utf16Column(text, (region.startColumn ?? firstNonBlank(text) + 1) - 1);
  const endLine = clamp((region.endLine ?? region.startLine ?? 1) - 1, line, last);
  const endText = lines[endLine] ?? '';
  // Without an end, the finding covers the rest of its line: the token's end is not reported.
  const endColumn = region.endColumn === undefined
    ? endText.trimEnd().length
    : utf16Column(endText, region.endColumn - 1);
  const cwe = result.properties?.cwe;
  const rule = result.ruleId ?? 'sarif';
  return {
    uri: location?.artifactLocation?.uri ?? '',
    line,
    column,
    endLine,
    endColumn: endLine === line ? Math.max(endColumn, column + 1) : endColumn,
    severity: LEVELS[result.level ?? 'warning'] ?? 'warning',
    message: `${result.message?.text ?? rule}${cwe ? ` (${cwe})` : ''}`,
    rule,
  };
}

/** The UTF-16 offset of the `characters`-th character of `text`. */
function utf16Column(text: string, characters: number): number {
  let offset = 0;
  let count = 0;
  for (const character of text) {
    if (count >= characters) break;
    offset += character.length;
    count++;
  }
  return offset;
}

function firstNonBlank(text: string): number {
  return Math.max(text.search(/\S/), 0);
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(Math.max(value, low), high);
}
