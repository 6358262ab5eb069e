// Types of results.mjs, for the TypeScript tests that record figures (test/network/*.test.ts).

/** One line naming the machine and the date. */
export declare function machine(): string
/** Rows of cells as a Markdown table under a header row. */
export declare function table(header: string[], rows: string[][]): string
/** Replaces (or appends) the section `name` of bench/RESULTS.md with `markdown`. */
export declare function recordSection(name: string, markdown: string): void
