/**
 * The first-run walkthrough's data, kept apart from the commands that use it so that the command line can name
 * their choices and defaults without loading them (see the lazy imports in main.ts).
 */

/** Where `demo --serve` listens unless told otherwise (beside the product's 8080, so both can run). */
export const DEFAULT_DEMO_PORT = 8090;

/** `send-sample`'s forms: a new lead (the contact-sales rule notifies the sales team) and a billing question (kept 7 years, reviewed). */
export const SAMPLE_FORMS = {
  'contact-sales': {
    form: 'contact-sales',
    name: 'Dana Sample',
    email: 'dana.sample@prospect.example',
    fields: { Company: 'Prospect Inc', Seats: '25', Message: 'We would like a demo and pricing for 25 seats next month.' },
  },
  billing: {
    form: 'support',
    name: 'Sam Sample',
    email: 'sam.sample@customer.example',
    fields: { Company: 'Customer Ltd', Message: 'Invoice INV-2231 was charged twice on our card; please refund the duplicate payment.' },
  },
} as const;
export type SampleKind = keyof typeof SAMPLE_FORMS;
