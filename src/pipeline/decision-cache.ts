/**
 * Where identical input was classified before. Only a pointer into the journal (a seq): the journal entry is
 * what is reused, and it is checked before reuse.
 */
import type { Redis } from 'ioredis';
import type { DecisionCache } from './ports.ts';

export class RedisDecisionCache implements DecisionCache {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}
  async get(promptHash: string, inputHash: string): Promise<number | null> {
    const v = await this.redis.hget(`${this.prefix}:ai-cache:${promptHash}`, inputHash);
    return v === null ? null : Number(v);
  }
  async set(promptHash: string, inputHash: string, decisionSeq: number): Promise<void> {
    await this.redis.hset(`${this.prefix}:ai-cache:${promptHash}`, inputHash, String(decisionSeq));
  }
}

export class MemoryDecisionCache implements DecisionCache {
  private readonly map = new Map<string, number>();
  get(promptHash: string, inputHash: string): Promise<number | null> {
    return Promise.resolve(this.map.get(`${promptHash}/${inputHash}`) ?? null);
  }
  set(promptHash: string, inputHash: string, decisionSeq: number): Promise<void> {
    this.map.set(`${promptHash}/${inputHash}`, decisionSeq);
    return Promise.resolve();
  }
}
