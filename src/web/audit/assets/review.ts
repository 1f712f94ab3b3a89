/** The review page's own styles and scripts (gathered by index.ts into the CSS and the CSP). */
export const css = '';
export const scripts = {} as const;
