/**
 * The log format: JSON unless a terminal reads stderr (then pino-pretty), LOG_FORMAT forcing either; validated.
 */
import { describe, expect, it } from 'vitest';
import { chooseLogFormat, prettyColours } from '../../src/config/logger.ts';
import { loadConfig } from '../../src/config/config.ts';
import { ConfigError } from '../../src/config/errors/config.error.ts';

describe('log format', () => {
  it('is pretty on a terminal and JSON into a file or a pipe, unless LOG_FORMAT says otherwise', () => {
    expect(chooseLogFormat(undefined, true)).toBe('pretty');
    expect(chooseLogFormat(undefined, false)).toBe('json');
    expect(chooseLogFormat('', false)).toBe('json');
    expect(chooseLogFormat('json', true)).toBe('json');
    expect(chooseLogFormat('pretty', false)).toBe('pretty');
  });

  it('colours only a terminal, and not with NO_COLOR', () => {
    expect(prettyColours({}, true)).toBe(true);
    expect(prettyColours({ NO_COLOR: '1' }, true)).toBe(false);
    expect(prettyColours({}, false)).toBe(false);
  });

  it('LOG_FORMAT is pretty or json, anything else is a configuration error naming it', () => {
    expect(loadConfig({ LOG_FORMAT: 'pretty' }).logFormat).toBe('pretty');
    expect(loadConfig({}).logFormat).toBeUndefined();
    expect(loadConfig({ LOG_FORMAT: '' }).logFormat).toBeUndefined();
    expect(() => loadConfig({ LOG_FORMAT: 'xml' })).toThrow(ConfigError);
    expect(() => loadConfig({ LOG_FORMAT: 'xml' })).toThrow(/LOG_FORMAT/);
  });
});
