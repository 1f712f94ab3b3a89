/** The archive store and schedule configuration: ARCHIVE_STORE, GCS credentials, ARCHIVE_SCHEDULE. */
import { describe, expect, it } from 'vitest';
import { loadConfig, parseArchiveSchedule, parseBucketUrl } from '../../src/config/config.ts';
import { ConfigError } from '../../src/config/errors/config.error.ts';

const base = { JOURNAL_PATH: '/tmp/aj-config/journal.sqlite' };

describe('archive configuration', () => {
  it('defaults to the directory store beside the journal, archived daily, first run within 10 minutes', () => {
    const c = loadConfig(base);
    expect(c.journal.archiveStore).toEqual({ kind: 'directory', dir: '/tmp/aj-config/archive' });
    expect(c.journal.archiveSchedule).toEqual({ everyMs: 86_400_000, firstAfterMs: 600_000 });
  });

  it('reads a bucket, its prefix, the base URL and the credentials (a token wins over a key file)', () => {
    const c = loadConfig({
      ...base,
      ARCHIVE_STORE: 'gs://acme-journal-archive/prod/eu/',
      GCS_BASE_URL: 'http://127.0.0.1:4443/',
      GCS_ACCESS_TOKEN: 'ya29.token-for-tests',
      GOOGLE_APPLICATION_CREDENTIALS: '/etc/aj/sa.json',
    });
    expect(c.journal.archiveStore).toEqual({
      kind: 'gcs',
      bucket: 'acme-journal-archive',
      prefix: 'prod/eu/',
      baseUrl: 'http://127.0.0.1:4443/',
      credentials: { accessToken: 'ya29.token-for-tests' },
      requireRetention: true,
    });
    const k = loadConfig({
      ...base,
      ARCHIVE_STORE: 'gcs://acme-journal-archive',
      GOOGLE_APPLICATION_CREDENTIALS: '/etc/aj/sa.json',
      GCS_REQUIRE_RETENTION: 'false',
    });
    expect(k.journal.archiveStore).toMatchObject({
      bucket: 'acme-journal-archive',
      prefix: '',
      credentials: { keyFile: '/etc/aj/sa.json' },
      requireRetention: false,
    });
    expect(loadConfig({ ...base, ARCHIVE_STORE: 'gs://acme-journal-archive' }).journal.archiveStore).toMatchObject({ credentials: null });
  });

  it('lists every bad value at once', () => {
    let err: unknown;
    try {
      loadConfig({ ...base, ARCHIVE_STORE: 's3://bucket', ARCHIVE_SCHEDULE: 'weekly-ish' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([
      expect.stringMatching(/^ARCHIVE_SCHEDULE: expected off, hourly, daily or a period/) as string,
      expect.stringMatching(/^ARCHIVE_STORE: expected "directory" \(ARCHIVE_DIR\) or gs:\/\/bucket/) as string,
    ]);
  });

  it('parses schedules and bucket URLs', () => {
    expect(parseArchiveSchedule('off')).toBeNull();
    expect(parseArchiveSchedule('hourly')).toBe(3_600_000);
    expect(parseArchiveSchedule('6h')).toBe(21_600_000);
    expect(parseArchiveSchedule('30s')).toBe(30_000);
    expect(parseArchiveSchedule('2d')).toBe(172_800_000);
    expect(parseArchiveSchedule('0s')).toBeUndefined();
    expect(parseArchiveSchedule('5 minutes')).toBeUndefined();
    expect(loadConfig({ ...base, ARCHIVE_SCHEDULE: 'off' }).journal.archiveSchedule).toBeNull();
    expect(loadConfig({ ...base, ARCHIVE_SCHEDULE: '2s' }).journal.archiveSchedule).toEqual({ everyMs: 2000, firstAfterMs: 2000 });
    expect(parseBucketUrl('gs://my-bucket/a/b')).toEqual({ bucket: 'my-bucket', prefix: 'a/b/' });
    expect(parseBucketUrl('gs://My_Bucket')).toBeNull();
    expect(parseBucketUrl('gs://my-bucket/../x')).toBeNull();
    expect(parseBucketUrl('gs://my-bucket/a b')).toBeNull();
  });
});
