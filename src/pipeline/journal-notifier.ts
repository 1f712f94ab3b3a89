/**
 * Notifications, until a delivery channel is configured: written to the log (ids only) and journaled as
 * notification.sent under the interaction's correlation.
 */
import type { JournalClient } from '../journal/journal-client.ts';
import type { Logger } from '../config/logger.ts';
import type { Notification, Notifier } from './ports.ts';

export class LogNotifier implements Notifier {
  constructor(private readonly journal: JournalClient, private readonly logger: Logger) {}

  async notify(n: Notification): Promise<void> {
    this.logger.info({ component: 'notifier', entryId: n.entryId, recipient: n.recipient, ruleId: n.ruleId, category: n.category }, 'notification');
    await this.journal.append({
      kind: 'notification.sent',
      source: 'pipeline',
      actor: 'notifier:log',
      correlationId: n.correlationId,
      causationId: n.entryId,
      idempotencyKey: `notify/${n.entryId}/${n.ruleId}`,
      payload: { channel: 'log', recipient: n.recipient, ruleId: n.ruleId, ruleVersion: n.ruleVersion, template: 'interaction-summary', dryRun: true },
    });
  }
}
