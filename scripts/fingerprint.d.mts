export declare const SOURCE_DIRS: readonly string[];
export declare const SOURCE_FILES: readonly string[];
export declare const STAMP_FILE: string;
export declare function sourceFingerprint(root: string): string;
export declare function buildState(root: string): 'fresh' | 'stale' | 'missing';
